import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { durationSeconds } from '../api/duration.ts';
import type { Backup, BackupPolicy, RestoreRequest } from '../api/kinds.ts';
import { replicaHealth } from '../operator/backuppolicy/replicas.ts';
import { lastSuccessfulBackup } from '../operator/backuppolicy/rpo.ts';
import { instant as instantOrUndefined } from '../operator/runtime/time.ts';
import { HistogramCounts, type Labels } from './histogram.ts';
import { BACKUP_REASONS, boundedReason, RESTORE_REASONS } from './reasons.ts';

/** Seconds: a quick database dump to a night-long volume backup. */
export const DURATION_BUCKETS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400];
/** Bytes: powers of 4 from 1 MiB to 4 TiB. */
export const SIZE_BUCKETS = Array.from({ length: 12 }, (_, i) => 2 ** 20 * 4 ** i);

/** The API objects the metrics are computed from: the operator's informer caches at scrape time. */
export interface ObservedObjects {
  policies: readonly BackupPolicy[];
  backups: readonly Backup[];
  restores: readonly RestoreRequest[];
  claims: readonly V1PersistentVolumeClaim[];
  now: Date;
}

export interface Sample {
  labels: Labels;
  value: number;
}

/** Gauge samples per metric, and the histograms' observations (one per object present) counted per label set. */
export interface ObjectSamples {
  sourceLastSuccess: Sample[];
  sourceRpo: Sample[];
  sourceNeverSucceeded: Sample[];
  sourceRpoTarget: Sample[];
  sourceRtoTarget: Sample[];
  sourceConsecutiveFailures: Sample[];
  replicaLag: Sample[];
  replicaLagObjective: Sample[];
  backups: Sample[];
  restores: Sample[];
  backupDurations: HistogramCounts;
  backupSizes: HistogramCounts;
  restoreDurations: HistogramCounts;
  restoreLastRto: Sample[];
  unprotectedVolumes: Sample[];
  auditMissingObjects: Sample[];
  drillLastSuccess: Sample[];
  drillLastResult: Sample[];
}

const seconds = (ms: number) => ms / 1000;
/** NaN when unset, so arithmetic on a missing time yields no sample. */
const instant = (iso: string | undefined) => instantOrUndefined(iso) ?? Number.NaN;

/**
 * Every metric about the API objects, pure: what a scrape reports for these objects at `now`.
 * Per-source values come from the same functions the BackupPolicy status does (rpo.ts, replicas.ts),
 * so a metric and the status never disagree. A source that never succeeded has no last-success
 * series, `never_succeeded` 1 and an RPO counted from the policy's creation.
 */
export function objectSamples(observed: ObservedObjects): ObjectSamples {
  const { now } = observed;
  const out: ObjectSamples = {
    sourceLastSuccess: [],
    sourceRpo: [],
    sourceNeverSucceeded: [],
    sourceRpoTarget: [],
    sourceRtoTarget: [],
    sourceConsecutiveFailures: [],
    replicaLag: [],
    replicaLagObjective: [],
    backups: [],
    restores: [],
    backupDurations: new HistogramCounts(DURATION_BUCKETS),
    backupSizes: new HistogramCounts(SIZE_BUCKETS),
    restoreDurations: new HistogramCounts(DURATION_BUCKETS),
    restoreLastRto: [],
    unprotectedVolumes: [],
    auditMissingObjects: [],
    drillLastSuccess: [],
    drillLastResult: [],
  };
  const backupsByPolicy = groupBy(observed.backups, (b) => `${b.metadata.namespace}/${b.spec.policy}`);

  for (const policy of observed.policies) {
    if (policy.metadata.deletionTimestamp) continue;
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    const backups = backupsByPolicy.get(`${namespace}/${name}`) ?? [];
    const bySource = groupBy(backups, (b) => b.spec.source);
    const created = instant(policy.metadata.creationTimestamp);
    const rpoTarget = durationSeconds(policy.spec.objectives?.rpo);
    const rtoTarget = durationSeconds(policy.spec.objectives?.rto);
    for (const source of policy.spec.sources) {
      const labels = { namespace, policy: name, source: source.name };
      const mine = bySource.get(source.name) ?? [];
      const last = lastSuccessfulBackup(mine);
      const lastSuccess = instant(last?.status?.completionTime);
      const never = Number.isNaN(lastSuccess);
      if (!never) out.sourceLastSuccess.push({ labels, value: seconds(lastSuccess) });
      const since = never ? created : lastSuccess;
      if (!Number.isNaN(since)) out.sourceRpo.push({ labels, value: Math.max(0, seconds(now.getTime() - since)) });
      out.sourceNeverSucceeded.push({ labels, value: never ? 1 : 0 });
      if (rpoTarget !== undefined) out.sourceRpoTarget.push({ labels, value: rpoTarget });
      if (rtoTarget !== undefined) out.sourceRtoTarget.push({ labels, value: rtoTarget });
      out.sourceConsecutiveFailures.push({ labels, value: failuresSince(mine, lastSuccess) });
      const audited = policy.status?.sources?.find((s) => s.name === source.name)?.lastAudit?.missingObjects;
      if (audited !== undefined) out.auditMissingObjects.push({ labels, value: audited });
    }
    // Restore drills: what the policy's status says of each source's newest drill.
    for (const status of policy.status?.sources ?? []) {
      const labels = { namespace, policy: name, source: status.name };
      if (status.lastDrill)
        out.drillLastResult.push({ labels, value: status.lastDrill.result === 'Succeeded' ? 1 : 0 });
      const drillSuccess = instant(status.lastDrillSuccessTime);
      if (!Number.isNaN(drillSuccess)) out.drillLastSuccess.push({ labels, value: seconds(drillSuccess) });
    }

    const replicas = replicaHealth(policy, backups, now);
    for (const replica of policy.spec.replicas ?? []) {
      const labels = { namespace, policy: name, repository: replica.repository };
      const since = replicas.lagSince.get(replica.repository);
      if (since) out.replicaLag.push({ labels, value: Math.max(0, seconds(now.getTime() - since.getTime())) });
      const objective = durationSeconds(replica.maxLag);
      if (objective !== undefined) out.replicaLagObjective.push({ labels, value: objective });
    }
  }

  // One pass over what can be 100,000s of Backups: label sets are keyed by their joined values, and
  // their label objects made once per series, not per Backup.
  const backupCounts = new Map<string, Sample>();
  const backupLabels = new Map<string, Labels>();
  for (const backup of observed.backups) {
    const phase = backup.status?.phase;
    if (backup.metadata.deletionTimestamp || (phase !== 'Succeeded' && phase !== 'Failed')) continue;
    const namespace = backup.metadata.namespace ?? '';
    const policy = backup.spec.policy;
    const type = backup.spec.type ?? 'full';
    const key = `${namespace}\0${policy}\0${type}`;
    let labels = backupLabels.get(key);
    if (!labels) {
      labels = { namespace, policy, type };
      backupLabels.set(key, labels);
    }
    const result = phase === 'Succeeded' ? 'succeeded' : 'failed';
    const reason = boundedReason(BACKUP_REASONS, succeededCondition(backup.status?.conditions)?.reason);
    count(backupCounts, `${key}\0${result}\0${reason}`, labels, { result, reason });
    if (phase !== 'Succeeded') continue;
    const duration = instant(backup.status?.completionTime) - instant(backup.status?.startTime);
    if (!Number.isNaN(duration)) out.backupDurations.observe(key, labels, Math.max(0, seconds(duration)));
    if (backup.status?.logicalBytes !== undefined) out.backupSizes.observe(key, labels, backup.status.logicalBytes);
  }
  out.backups = [...backupCounts.values()];

  const backupPolicy = new Map(
    observed.backups.map((b) => [`${b.metadata.namespace}/${b.metadata.name}`, b.spec.policy] as const),
  );
  const restoreCounts = new Map<string, Sample>();
  const lastRto = new Map<string, { at: number; sample: Sample }>();
  for (const request of observed.restores) {
    const phase = request.status?.phase;
    if (phase !== 'Succeeded' && phase !== 'Failed') continue;
    const namespace = request.metadata.namespace ?? '';
    const reason = boundedReason(RESTORE_REASONS, succeededCondition(request.status?.conditions)?.reason);
    const result = phase === 'Succeeded' ? 'succeeded' : 'failed';
    count(restoreCounts, `${namespace}\0${result}\0${reason}`, { namespace }, { result, reason });
    if (phase !== 'Succeeded') continue;
    const completed = instant(request.status?.completionTime);
    const duration = completed - instant(request.status?.startTime);
    if (!Number.isNaN(duration)) out.restoreDurations.observe(namespace, { namespace }, Math.max(0, seconds(duration)));
    const policy =
      backupPolicy.get(`${namespace}/${request.status?.backupName}`) ?? request.spec.from.policy ?? undefined;
    const rto = request.status?.rtoSeconds;
    if (!policy || rto === undefined || Number.isNaN(completed)) continue;
    const key = `${namespace}/${policy}`;
    const previous = lastRto.get(key);
    if (!previous || completed > previous.at)
      lastRto.set(key, { at: completed, sample: { labels: { namespace, policy }, value: rto } });
  }
  out.restores = [...restoreCounts.values()];
  out.restoreLastRto = [...lastRto.values()].map((r) => r.sample);

  out.unprotectedVolumes = unprotectedVolumes(observed.policies, observed.claims);
  return out;
}

/**
 * Per namespace holding a BackupPolicy: its PVCs that no policy source selects (by claimName or by
 * label), leaving out the temporary ones the operator creates itself. Every such namespace has a
 * series, 0 when all its PVCs are protected.
 */
function unprotectedVolumes(policies: readonly BackupPolicy[], claims: readonly V1PersistentVolumeClaim[]): Sample[] {
  const sources = groupBy(
    policies.flatMap((p) => p.spec.sources.map((s) => ({ namespace: p.metadata.namespace ?? '', volume: s.volume }))),
    (s) => s.namespace,
  );
  const unprotected = new Map<string, number>([...sources.keys()].map((namespace) => [namespace, 0]));
  for (const claim of claims) {
    const namespace = claim.metadata?.namespace ?? '';
    const count = unprotected.get(namespace);
    if (count === undefined || claim.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'tidemark') continue;
    const labels = claim.metadata?.labels ?? {};
    const selected = (sources.get(namespace) ?? []).some(({ volume }) => {
      if (!volume) return false;
      if (volume.claimName !== undefined) return volume.claimName === claim.metadata?.name;
      const selector = Object.entries(volume.selector?.matchLabels ?? {});
      return selector.every(([key, value]) => labels[key] === value);
    });
    if (!selected) unprotected.set(namespace, count + 1);
  }
  return [...unprotected].map(([namespace, value]) => ({ labels: { namespace }, value }));
}

/** Failed runs of a source that ended after its last success (all of them when it never succeeded). */
function failuresSince(backups: readonly Backup[], lastSuccess: number): number {
  const failed = backups.filter((b) => !b.metadata.deletionTimestamp && b.status?.phase === 'Failed');
  if (Number.isNaN(lastSuccess)) return failed.length;
  return failed.filter((b) => instant(b.status?.completionTime) > lastSuccess).length;
}

function succeededCondition(conditions: { type: string; reason?: string }[] | undefined) {
  return conditions?.find((c) => c.type === 'Succeeded');
}

/** `key` names the label set (its values joined); its labels, `base` and `more`, are joined only when the set is new. */
function count(counts: Map<string, Sample>, key: string, base: Labels, more: Labels): void {
  const sample = counts.get(key);
  if (sample) sample.value += 1;
  else counts.set(key, { labels: { ...base, ...more }, value: 1 });
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
