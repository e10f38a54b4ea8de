import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { durationSeconds } from '../api/duration.ts';
import type { Backup, BackupPolicy, RestoreRequest } from '../api/kinds.ts';
import { replicaHealth } from '../operator/backuppolicy/replicas.ts';
import { lastSuccessfulBackup } from '../operator/backuppolicy/rpo.ts';
import type { BackupGroups } from '../operator/runtime/by-policy.ts';
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
  /** The Backups by the policy they name (runtime/by-policy.ts), also those of a policy that is gone. */
  backups: BackupGroups;
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

/** A gauge that counts from an instant to the scrape's `now` (RPO, replica lag). */
interface Since {
  labels: Labels;
  since: number;
}

/** The gauges of a policy's sources and replicas that do not count from an instant to `now`. */
const POLICY_GAUGES = [
  'sourceLastSuccess',
  'sourceNeverSucceeded',
  'sourceRpoTarget',
  'sourceRtoTarget',
  'sourceConsecutiveFailures',
  'auditMissingObjects',
  'drillLastResult',
  'drillLastSuccess',
  'replicaLagObjective',
] as const;

/** What a policy's samples are, apart from the clock: kept while the policy and its Backups are the same objects. */
type PolicyFacts = PolicyGauges & { sourceRpo: Since[]; replicaLag: Since[] };

type PolicyGauges = Record<(typeof POLICY_GAUGES)[number], Sample[]>;

const noPolicyFacts = (): PolicyFacts => ({
  ...(Object.fromEntries(POLICY_GAUGES.map((key) => [key, [] as Sample[]])) as PolicyGauges),
  sourceRpo: [],
  replicaLag: [],
});

/** What one policy's Backups add to the per-Backup metrics (their series carry the policy label: no two groups share one). */
interface GroupFacts {
  backups: Sample[];
  durations: HistogramCounts;
  sizes: HistogramCounts;
}

/**
 * What earlier scrapes computed, by object identity: the informer caches replace an object (and the Backup
 * index a group's array) when it changes, so a scrape recomputes only what changed since the last one. With
 * 100,000s of Backups, recomputing everything made each scrape seconds of work and ~150 MB of garbage.
 */
export class SamplesMemo {
  readonly groups = new WeakMap<readonly Backup[], GroupFacts>();
  readonly policies = new WeakMap<BackupPolicy, { backups: readonly Backup[]; facts: PolicyFacts }>();
}

const NO_BACKUPS: readonly Backup[] = [];

/**
 * Every metric about the API objects, pure: what a scrape reports for these objects at `now` (`memo`
 * only saves recomputing what an earlier call computed from the same objects).
 * Per-source values come from the same functions the BackupPolicy status does (rpo.ts, replicas.ts),
 * so a metric and the status never disagree. A source that never succeeded has no last-success
 * series, `never_succeeded` 1 and an RPO counted from the policy's creation.
 */
export function objectSamples(observed: ObservedObjects, memo = new SamplesMemo()): ObjectSamples {
  const { now } = observed;
  const out: ObjectSamples = {
    ...noPolicyFacts(),
    sourceRpo: [],
    replicaLag: [],
    backups: [],
    restores: [],
    backupDurations: new HistogramCounts(DURATION_BUCKETS),
    backupSizes: new HistogramCounts(SIZE_BUCKETS),
    restoreDurations: new HistogramCounts(DURATION_BUCKETS),
    restoreLastRto: [],
    unprotectedVolumes: [],
  };
  for (const group of observed.backups.groups()) {
    let facts = memo.groups.get(group.backups);
    if (!facts) {
      facts = groupFacts(group.backups);
      memo.groups.set(group.backups, facts);
    }
    out.backups.push(...facts.backups);
    out.backupDurations.merge(facts.durations);
    out.backupSizes.merge(facts.sizes);
  }

  const since = (s: Since) => ({ labels: s.labels, value: Math.max(0, seconds(now.getTime() - s.since)) });
  for (const policy of observed.policies) {
    if (policy.metadata.deletionTimestamp) continue;
    const backups =
      observed.backups.backupsOf(policy.metadata.namespace ?? '', policy.metadata.name ?? '') ?? NO_BACKUPS;
    let kept = memo.policies.get(policy);
    if (kept?.backups !== backups) {
      kept = { backups, facts: policyFacts(policy, backups) };
      memo.policies.set(policy, kept);
    }
    const { facts } = kept;
    for (const key of POLICY_GAUGES) out[key].push(...facts[key]);
    out.sourceRpo.push(...facts.sourceRpo.map(since));
    out.replicaLag.push(...facts.replicaLag.map(since));
  }

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
    const backupName = request.status?.backupName;
    const policy =
      (backupName ? observed.backups.policyOf(namespace, backupName) : undefined) ??
      request.spec.from.policy ??
      undefined;
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

function policyFacts(policy: BackupPolicy, backups: readonly Backup[]): PolicyFacts {
  const facts = noPolicyFacts();
  const namespace = policy.metadata.namespace ?? '';
  const name = policy.metadata.name ?? '';
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
    if (!never) facts.sourceLastSuccess.push({ labels, value: seconds(lastSuccess) });
    const from = never ? created : lastSuccess;
    if (!Number.isNaN(from)) facts.sourceRpo.push({ labels, since: from });
    facts.sourceNeverSucceeded.push({ labels, value: never ? 1 : 0 });
    if (rpoTarget !== undefined) facts.sourceRpoTarget.push({ labels, value: rpoTarget });
    if (rtoTarget !== undefined) facts.sourceRtoTarget.push({ labels, value: rtoTarget });
    facts.sourceConsecutiveFailures.push({ labels, value: failuresSince(mine, lastSuccess) });
    const audited = policy.status?.sources?.find((s) => s.name === source.name)?.lastAudit?.missingObjects;
    if (audited !== undefined) facts.auditMissingObjects.push({ labels, value: audited });
  }
  // Restore drills: what the policy's status says of each source's newest drill.
  for (const status of policy.status?.sources ?? []) {
    const labels = { namespace, policy: name, source: status.name };
    if (status.lastDrill)
      facts.drillLastResult.push({ labels, value: status.lastDrill.result === 'Succeeded' ? 1 : 0 });
    const drillSuccess = instant(status.lastDrillSuccessTime);
    if (!Number.isNaN(drillSuccess)) facts.drillLastSuccess.push({ labels, value: seconds(drillSuccess) });
  }
  // The lag's start does not depend on the clock (replicas.ts); only its verdict does, which no metric shows.
  const replicas = replicaHealth(policy, [...backups], new Date(0));
  for (const replica of policy.spec.replicas ?? []) {
    const labels = { namespace, policy: name, repository: replica.repository };
    const from = replicas.lagSince.get(replica.repository);
    if (from) facts.replicaLag.push({ labels, since: from.getTime() });
    const objective = durationSeconds(replica.maxLag);
    if (objective !== undefined) facts.replicaLagObjective.push({ labels, value: objective });
  }
  return facts;
}

/** One pass over a policy's Backups: label sets keyed by their joined values, each made once per series. */
function groupFacts(backups: readonly Backup[]): GroupFacts {
  const facts: GroupFacts = {
    backups: [],
    durations: new HistogramCounts(DURATION_BUCKETS),
    sizes: new HistogramCounts(SIZE_BUCKETS),
  };
  const backupCounts = new Map<string, Sample>();
  const backupLabels = new Map<string, Labels>();
  for (const backup of backups) {
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
    if (!Number.isNaN(duration)) facts.durations.observe(key, labels, Math.max(0, seconds(duration)));
    if (backup.status?.logicalBytes !== undefined) facts.sizes.observe(key, labels, backup.status.logicalBytes);
  }
  facts.backups = [...backupCounts.values()];
  return facts;
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
