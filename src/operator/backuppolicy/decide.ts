import type { BackupPolicyStatus } from '../../api/backuppolicy.ts';
import type { Condition } from '../../api/common.ts';
import { API_GROUP_VERSION } from '../../api/common.ts';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import { isFinished, retiredFrom } from '../backup/decide.ts';
import { LABELS } from '../jobs/labels.ts';
import { type HoldContext, holdsOn } from '../retention/holds.ts';
import { applyRetention, retentionForRepository } from '../retention/retention.ts';
import { type ConditionInput, setCondition } from '../runtime/conditions.ts';
import { labelValue } from '../runtime/labels.ts';
import { drillTarget } from '../runtime/policy-status.ts';
import { replicaHealth } from './replicas.ts';
import { lastSuccessfulBackup, rpoVerdict, type SourceFreshness } from './rpo.ts';
import { backupName, dueRuns, validateSchedule } from './schedule.ts';

export interface PolicyObserved {
  policy: BackupPolicy;
  /** Backups labelled with this policy. */
  backups: Backup[];
  /** BackupRepositories of the namespace, by name. */
  repositories: Map<string, BackupRepository>;
  /** RestoreRequests of the namespace (retention keeps the Backups those that have not ended name). */
  restores: RestoreRequest[];
  now: Date;
}

export interface PolicyEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface PolicyDecision {
  create: Backup[];
  /** Backups no repository's retention keeps, each with why (an Event on the policy says it). */
  remove: { name: string; reasons: string[] }[];
  /**
   * Backups some repositories' retention dropped while another keeps them: the new value of their
   * RETIRED_ANNOTATION (the Backup controller forgets those copies), with each repository's reasons.
   */
  retire: { name: string; repositories: string[]; reasons: string[] }[];
  status: BackupPolicyStatus;
  events: PolicyEvent[];
  requeueAfterMs: number;
}

const MAX_REQUEUE_MS = 5 * 60_000;

/**
 * The BackupPolicy controller's decision, pure (R-SCHED, R-RET, R-OBJ, data residency): which
 * Backups to create now, which retention removes, the status and when to look again.
 */
export function decidePolicy(observed: PolicyObserved): PolicyDecision {
  const { policy, now } = observed;
  const generation = policy.metadata.generation;
  const previous = policy.status ?? {};
  let conditions = previous.conditions ?? [];
  const set = (type: string, status: Condition['status'], reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
  };
  /** Sets a condition, or removes its type when the policy asks for nothing it could report on. */
  const setOrRemove = (type: string, input: ConditionInput | undefined) => {
    conditions = input ? setCondition(conditions, input, generation, now) : conditions.filter((c) => c.type !== type);
  };
  const requeueAt = (at: Date | undefined) => {
    if (at) decision.requeueAfterMs = Math.min(decision.requeueAfterMs, Math.max(1, at.getTime() - now.getTime()));
  };
  const decision: PolicyDecision = {
    create: [],
    remove: [],
    retire: [],
    status: {},
    events: [],
    requeueAfterMs: MAX_REQUEUE_MS,
  };

  const problems: Problem[] = [
    ...validateSchedule(policy.spec.schedule).map((p) => ({ ...p, reason: 'InvalidSchedule' })),
    ...residencyProblems(policy, observed.repositories),
  ];
  const created = new Date(policy.metadata.creationTimestamp ?? now.toISOString());
  const sources: NonNullable<BackupPolicyStatus['sources']> = [];
  const freshness: SourceFreshness[] = [];
  let earliestNext: Date | undefined;
  const holdContext: HoldContext = { restores: observed.restores, repositories: observed.repositories, now };
  const holds = new Map<string, Set<string>>();

  for (const source of policy.spec.sources) {
    const mine = observed.backups
      .filter((b) => b.spec.source === source.name)
      .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
    const scheduled = (type: string) =>
      mine
        .filter((b) => (b.spec.type ?? 'full') === type && b.spec.scheduledTime)
        .map((b) => new Date(b.spec.scheduledTime as string))
        .sort((a, b) => b.getTime() - a.getTime())[0];
    // A Backup being deleted no longer vouches for its snapshot (it may be forgotten already) and is
    // retention's no more: it counts for no-overlap and slots only.
    const live = mine.filter((b) => !b.metadata.deletionTimestamp);
    const lastSuccess = lastSuccessfulBackup(mine);
    const newest = mine[mine.length - 1];
    const sourceStatus: NonNullable<BackupPolicyStatus['sources']>[number] = { name: source.name };
    if (newest) {
      sourceStatus.lastBackup = newest.metadata.name ?? '';
      if (newest.metadata.creationTimestamp) sourceStatus.lastBackupTime = newest.metadata.creationTimestamp;
    }
    const lastFull = scheduled('full');
    const lastIncremental = scheduled('incremental');
    if (lastFull) sourceStatus.lastFullTime = lastFull.toISOString();
    if (lastIncremental) sourceStatus.lastIncrementalTime = lastIncremental.toISOString();
    if (lastSuccess?.status?.completionTime) {
      sourceStatus.lastSuccessfulBackup = lastSuccess.metadata.name ?? '';
      sourceStatus.lastSuccessTime = lastSuccess.status.completionTime;
    }
    // No success, no time: a source that never succeeded (or whose Backups were all deleted) has none.
    freshness.push({
      name: source.name,
      ...(lastSuccess?.status?.completionTime ? { lastSuccess: new Date(lastSuccess.status.completionTime) } : {}),
    });

    if (problems.length === 0) {
      const runs = dueRuns({
        schedule: policy.spec.schedule,
        policyCreated: created,
        lastFullTime: lastFull,
        lastIncrementalTime: lastIncremental,
        now,
      });
      // A suspended schedule runs nothing: showing a next run would announce one that will not happen.
      if (!policy.spec.schedule.suspend) {
        sourceStatus.nextRunTime = runs.nextRunTime.toISOString();
        if (!earliestNext || runs.nextRunTime < earliestNext) earliestNext = runs.nextRunTime;
      }
      // Aim just past the slot (a timer may fire a millisecond early, which would miss it by a whole
      // requeue). A slot already past waits for the running Backup, whose update requeues us.
      const untilNext = runs.nextRunTime.getTime() - now.getTime();
      decision.requeueAfterMs = Math.min(decision.requeueAfterMs, untilNext > 0 ? untilNext + 5 : 1000);
      const running = mine.find((b) => !isFinished(b));
      if (runs.due && running) {
        // No two runs of one source overlap: the due run starts when the running one ends (its update requeues us).
      } else if (runs.due) {
        decision.create.push(newBackup(policy, source.name, runs.due.type, runs.due.scheduledTime));
        if (runs.missed > 0)
          decision.events.push({
            type: 'Warning',
            reason: 'MissedRuns',
            message: `source ${source.name}: ${runs.missed} scheduled ${runs.due.type} run(s) were missed; running the latest once`,
          });
      }
    }

    const finished = live.filter((b) => isFinished(b) && b.status?.completionTime);
    const verdict = retain(policy, finished, now, holdContext);
    decision.remove.push(...verdict.remove);
    decision.retire.push(...verdict.retire);
    for (const held of verdict.held) {
      const reasons = holds.get(held.name) ?? new Set<string>();
      for (const r of held.reasons) reasons.add(r);
      holds.set(held.name, reasons);
      requeueAt(held.until && new Date(held.until.getTime() + 5));
    }
    sources.push(sourceStatus);
  }

  if (problems.length) {
    const first = problems[0];
    set('Ready', 'False', first?.reason ?? 'Invalid', problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  } else set('Ready', 'True', 'Scheduled', 'schedule valid, repositories allowed');
  const rpo = rpoVerdict(freshness, policy.spec.objectives?.rpo, created, now);
  setOrRemove('RPOMet', rpo.condition);
  requeueAt(rpo.nextChange);
  const replicas = replicaHealth(policy, observed.backups, now);
  setOrRemove('ReplicasHealthy', replicas.condition);
  requeueAt(replicas.nextChange);
  setOrRemove('Verification', verificationCondition(policy));

  const retentionHolds = [...holds]
    .map(([backup, reasons]) => ({ backup, reason: [...reasons].join('; ') }))
    .sort((a, b) => a.backup.localeCompare(b.backup));
  const heldBefore = new Set((previous.retentionHolds ?? []).map((h) => h.backup));
  for (const hold of retentionHolds.filter((h) => !heldBefore.has(h.backup)))
    decision.events.push({
      type: 'Normal',
      reason: 'BackupHeld',
      message: `retention keeps ${hold.backup} for now: ${hold.reason}`,
    });

  // The policy is as fresh as its stalest source, and has no such time while any source never succeeded.
  const successes = freshness.map((f) => f.lastSuccess);
  const stalest = successes.every((t): t is Date => t !== undefined)
    ? successes.reduce<Date | undefined>((a, b) => (!a || b < a ? b : a), undefined)
    : undefined;
  decision.status = {
    conditions,
    observedGeneration: generation ?? 0,
    sources,
    ...(replicas.replicas.length ? { replicas: replicas.replicas } : {}),
    ...(retentionHolds.length ? { retentionHolds } : {}),
    ...(stalest ? { lastSuccessTime: stalest.toISOString() } : {}),
    ...(earliestNext ? { nextRunTime: earliestNext.toISOString() } : {}),
  };
  return decision;
}

/**
 * Whether the restore drills verification asks for run: they cover database sources with a drill
 * server of their engine, and volume sources (a scratch PVC). Audits run for every source: nothing to say.
 */
function verificationCondition(policy: BackupPolicy): ConditionInput | undefined {
  const { restoreDrill } = policy.spec.verification ?? {};
  if (!restoreDrill) return undefined;
  const uncovered = policy.spec.sources
    .filter((s) => !drillTarget(policy, s))
    .map((s) => `${s.name} (set verification.restoreDrill.${s.postgres ? 'postgres' : 'mysql'}: its drill server)`);
  if (uncovered.length)
    return {
      type: 'Verification',
      status: 'False',
      reason: 'NotCovered',
      message: `restore drills do not cover source ${uncovered.join(', ')}`,
    };
  return {
    type: 'Verification',
    status: 'True',
    reason: 'DrillsScheduled',
    message: 'restore drills cover every source',
  };
}

interface Problem {
  field: string;
  message: string;
  reason: string;
}

/**
 * Repositories must exist and be initialised (their probe succeeded), declared replica regions must
 * match, and every region must be allowed (data residency).
 */
function residencyProblems(policy: BackupPolicy, repositories: Map<string, BackupRepository>): Problem[] {
  const allowed = policy.spec.allowedRegions;
  const check = (name: string, field: string, declaredRegion?: string): Problem | undefined => {
    const repository = repositories.get(name);
    if (!repository) return { field, message: `BackupRepository ${name} not found`, reason: 'RepositoryNotFound' };
    if (declaredRegion !== undefined && repository.spec.region !== declaredRegion)
      return {
        field: `${field}.region`,
        message: `declared ${declaredRegion} but ${name} is in ${repository.spec.region}`,
        reason: 'RegionNotAllowed',
      };
    if (allowed && !allowed.includes(repository.spec.region))
      return {
        field,
        message: `${name} is in ${repository.spec.region}, not in allowedRegions`,
        reason: 'RegionNotAllowed',
      };
    if (!repository.status?.initialized)
      return {
        field,
        message: `BackupRepository ${name} is not initialised yet (see its Ready condition)`,
        reason: 'RepositoryNotReady',
      };
    return undefined;
  };
  const problems = [
    check(policy.spec.repository, 'spec.repository'),
    ...(policy.spec.replicas ?? []).map((r, i) => check(r.repository, `spec.replicas[${i}]`, r.region)),
  ];
  return problems.filter((p): p is Problem => p !== undefined);
}

/**
 * R-RET per repository: each repository's rule (a replica's own, else the primary's) decides on its
 * own. A Backup goes when no repository keeps it; one that some repositories dropped while another
 * keeps it stays, and those repositories' copies are retired.
 */
interface RetentionVerdict extends Pick<PolicyDecision, 'remove' | 'retire'> {
  /** Backups some repository's rule drops but a hold keeps there, with why and until when. */
  held: { name: string; reasons: string[]; until?: Date }[];
}

function retain(policy: BackupPolicy, finished: Backup[], now: Date, holdContext: HoldContext): RetentionVerdict {
  if (finished.length === 0) return { remove: [], retire: [], held: [] };
  const input = finished.map((b) => ({
    name: b.metadata.name ?? '',
    type: b.spec.type ?? 'full',
    chainId: b.status?.chainId ?? b.metadata.name ?? '',
    completionTime: new Date(b.status?.completionTime as string),
    phase: b.status?.phase === 'Succeeded' ? ('Succeeded' as const) : ('Failed' as const),
  }));
  const repositories = [policy.spec.repository, ...(policy.spec.replicas ?? []).map((r) => r.repository)];
  const verdicts = repositories.map((repository) => ({
    repository,
    decisions: applyRetention(
      input,
      retentionForRepository(policy.spec, repository),
      now,
      policy.spec.schedule.timeZone ?? 'UTC',
    ),
  }));
  const result: RetentionVerdict = { remove: [], retire: [], held: [] };
  finished.forEach((backup, i) => {
    const name = backup.metadata.name ?? '';
    const reasons = (v: (typeof verdicts)[number]) =>
      (v.decisions[i]?.reasons ?? []).map((r) => (verdicts.length > 1 ? `${v.repository}: ${r}` : r));
    const dropped = verdicts.filter((v) => {
      if (v.decisions[i]?.keep) return false;
      const holds = holdsOn(backup, v.repository, holdContext);
      if (holds.length === 0) return true;
      const untils = holds.map((h) => h.until?.getTime());
      const until = untils.every((t): t is number => t !== undefined) ? new Date(Math.max(...untils)) : undefined;
      result.held.push({
        name,
        reasons: [...holds.map((h) => h.reason), `otherwise removed: ${reasons(v).join(', ')}`],
        ...(until ? { until } : {}),
      });
      return false;
    });
    if (dropped.length === verdicts.length) result.remove.push({ name, reasons: dropped.flatMap(reasons) });
    else if (dropped.length > 0) {
      const retiring = dropped.map((v) => v.repository).sort();
      if (retiring.join(',') !== retiredFrom(backup).sort().join(','))
        result.retire.push({ name, repositories: retiring, reasons: dropped.flatMap(reasons) });
    }
  });
  return result;
}

function newBackup(policy: BackupPolicy, source: string, type: 'full' | 'incremental', scheduledTime: Date): Backup {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'Backup',
    metadata: {
      name: backupName(policy.metadata.name ?? '', source, type, scheduledTime),
      namespace: policy.metadata.namespace ?? '',
      labels: { [LABELS.policy]: labelValue(policy.metadata.name ?? ''), [LABELS.source]: labelValue(source) },
    },
    spec: { policy: policy.metadata.name ?? '', source, type, scheduledTime: scheduledTime.toISOString() },
  };
}
