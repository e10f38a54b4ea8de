import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { LastDrill } from '../../api/backuppolicy.ts';
import { durationSeconds } from '../../api/duration.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { ErrorCode } from '../../errors.ts';
import { nextRun, previousRun } from '../backuppolicy/schedule.ts';
import type { AgentSettings } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import type { ConditionInput } from '../runtime/conditions.ts';
import type { EventType } from '../runtime/events.ts';
import { labelValue } from '../runtime/labels.ts';
import { type DrillFields, type DrillTarget, drillTarget } from '../runtime/policy-status.ts';
import { instant } from '../runtime/time.ts';
import {
  cleanupJobName,
  DRILL_ANNOTATIONS,
  DRILL_MODE_LABEL,
  drillJob,
  drillJobName,
  SCRATCH_LABEL,
  scratchClaim,
} from './job.ts';
import { scratchSize } from './scratch-size.ts';

export interface DrillObserved {
  policy: BackupPolicy;
  /** The policy's Backups. */
  backups: Backup[];
  repositories: Map<string, BackupRepository>;
  /** The policy's agent Jobs (drills and cleanups), with the results of those that ended. */
  jobs: Map<string, JobObserved>;
  /** The namespace's PVCs: the volume sources' (the scratch PVC's size) and the drills' scratch PVCs. */
  claims: k8s.V1PersistentVolumeClaim[];
  settings: AgentSettings;
  now: Date;
  /** In [0, 1): picks the older backup a drill restores now and then. */
  random: () => number;
}

export interface DrillDecision {
  /** Scratch PVCs of volume drills, created before their Jobs. */
  createClaims: k8s.V1PersistentVolumeClaim[];
  createJobs: k8s.V1Job[];
  /** Scratch PVCs whose drill ended or whose Job is gone (a killed drill, a crash before the Job was created). */
  deleteClaims: string[];
  /**
   * Ended Jobs of drills before the newest (and their cleanups): the newest keeps its logs, unless it
   * drilled a volume (its pod would keep the scratch PVC from being deleted).
   */
  deleteJobs: string[];
  /** New drill fields per source name (only sources whose drill ended since the status was written). */
  sources: Map<string, DrillFields>;
  /** The Restorable condition to set on a Backup a drill restored. */
  restorable: { backup: string; condition: ConditionInput }[];
  events: { type: EventType; reason: string; message: string }[];
  requeueAfterMs?: number;
}

/**
 * Failures that say nothing about the backup itself (the drill server unreachable or refused, the
 * drill stopped): the drill failed, but the Backup's Restorable condition stays as it was.
 */
const NOT_ABOUT_THE_BACKUP: ReadonlySet<string> = new Set<ErrorCode | 'PodCannotStart'>([
  'SourceUnavailable',
  'InvalidArgument',
  'Interrupted',
  'Unsupported',
  'PodCannotStart',
]);

/**
 * The drill controller's decision, pure (R-VERIFY): per source a drill covers, record the newest
 * drill Job once it ended (policy status, the Backup's Restorable condition, an Event), start the
 * cleanup Job after a drill that ended without a result (killed: it may have left its database), and
 * start the next drill when the trigger is due: the newest successful Backup, or every
 * olderBackupEvery-th drill a randomly chosen older one.
 */
export function decideDrills(observed: DrillObserved): DrillDecision {
  const { policy, now } = observed;
  const decision: DrillDecision = {
    createClaims: [],
    createJobs: [],
    deleteClaims: [],
    deleteJobs: [],
    sources: new Map(),
    restorable: [],
    events: [],
  };
  const drill = policy.spec.verification?.restoreDrill;
  if (!drill || policy.metadata.deletionTimestamp) return decision;
  const requeueAt = (time: number) => {
    const ms = Math.max(0, time - now.getTime());
    decision.requeueAfterMs = Math.min(decision.requeueAfterMs ?? ms, ms);
  };
  const created = new Date(policy.metadata.creationTimestamp ?? now.toISOString());
  const timeZone = policy.spec.schedule.timeZone ?? 'UTC';
  const jobs = [...observed.jobs.values()];

  for (const source of policy.spec.sources) {
    const target = drillTarget(policy, source);
    if (!target) continue;
    const status = policy.status?.sources?.find((s) => s.name === source.name);
    let fields: DrillFields = {
      ...(status?.lastDrill ? { lastDrill: status.lastDrill } : {}),
      ...(status?.lastDrillSuccessTime ? { lastDrillSuccessTime: status.lastDrillSuccessTime } : {}),
      drills: status?.drills ?? 0,
    };
    const mine = jobs.filter((j) => j.job.metadata?.annotations?.[DRILL_ANNOTATIONS.source] === source.name);
    const drills = mine
      .filter((j) => j.job.metadata?.labels?.[DRILL_MODE_LABEL] === 'drill')
      .sort((a, b) => scheduledOf(a.job) - scheduledOf(b.job));
    const newest = drills[drills.length - 1];
    const running = newest !== undefined && !jobOutcome(newest.job);
    if (newest && !running) {
      const name = newest.job.metadata?.name ?? '';
      if (fields.lastDrill?.job !== name) {
        fields = record(observed, decision, fields, newest, target);
        decision.sources.set(source.name, fields);
      }
      // Its pod holds the scratch PVC (a PVC goes only once no pod names it, ended or not): recorded, the Job goes.
      if (target.kind === 'volume') decision.deleteJobs.push(name);
      const cleanup = cleanupJobName(name);
      // A volume drill leaves only its scratch PVC, which goes below; a database drill may leave its database.
      if (
        target.kind === 'database' &&
        newest.result?.ok !== true &&
        !mine.some((j) => j.job.metadata?.name === cleanup)
      )
        decision.createJobs.push(
          drillJob({
            policy,
            source: source.name,
            target,
            mode: 'cleanup',
            name: cleanup,
            settings: observed.settings,
          }),
        );
    }
    const kept = new Set([newest?.job.metadata?.name, newest && cleanupJobName(newest.job.metadata?.name ?? '')]);
    for (const { job } of mine)
      if (!kept.has(job.metadata?.name) && jobOutcome(job)) decision.deleteJobs.push(job.metadata?.name ?? '');
    if (running) continue;

    const after = Math.max(
      instant(fields.lastDrill?.time) ?? 0,
      newest ? scheduledOf(newest.job) : 0,
      created.getTime(),
    );
    const next = nextRun(drill, timeZone, new Date(after), created);
    if (next > now) {
      requeueAt(next.getTime());
      continue;
    }
    // Slots missed (operator down, drills slower than the interval) are not caught up: one drill, for the latest.
    const due = previousRun(drill, timeZone, now, created) ?? next;
    const repository = observed.repositories.get(policy.spec.repository);
    const candidates = restorableBackups(observed.backups, source.name, policy.spec.repository);
    if (!repository || candidates.length === 0) continue; // a new Backup or the repository requeues the policy
    const count = (fields.drills ?? 0) + 1;
    const every = drill.olderBackupEvery;
    const older = every !== undefined && count % every === 0 && candidates.length > 1;
    const chosen = older
      ? (candidates[Math.floor(observed.random() * (candidates.length - 1))] as Restorable)
      : (candidates[candidates.length - 1] as Restorable);
    const name = drillJobName(policy, source.name, due);
    if (target.kind === 'volume') {
      const size = target.scratch.size ?? scratchSize(source, observed.claims);
      if (size === undefined) {
        decision.events.push({
          type: 'Warning',
          reason: 'DrillNotStarted',
          message: `the restore drill of source ${source.name} needs the size of its scratch PVC: none of its PVCs requests storage; set verification.restoreDrill.volume.size`,
        });
        continue;
      }
      decision.createClaims.push(scratchClaim({ policy, source: source.name, name, scratch: target.scratch, size }));
    }
    decision.createJobs.push(
      drillJob({
        policy,
        source: source.name,
        target,
        mode: 'drill',
        name,
        settings: observed.settings,
        restore: { repository, snapshotId: chosen.snapshotId, backup: chosen.name, scheduled: due },
      }),
    );
  }
  decision.deleteClaims = endedScratchClaims(observed, decision.createJobs);
  return decision;
}

/**
 * The policy's scratch PVCs no running drill Job mounts, and none about to be created: their drill
 * ended, or its Job is gone (killed and deleted, or never created after a crash).
 */
function endedScratchClaims(observed: DrillObserved, creating: k8s.V1Job[]): string[] {
  const policy = labelValue(observed.policy.metadata.name ?? '');
  const inUse = new Set([
    ...[...observed.jobs.values()].filter((j) => !jobOutcome(j.job)).map((j) => j.job.metadata?.name),
    ...creating.map((j) => j.metadata?.name),
  ]);
  return observed.claims
    .filter((c) => c.metadata?.labels?.[SCRATCH_LABEL] === policy && !c.metadata.deletionTimestamp)
    .map((c) => c.metadata?.name ?? '')
    .filter((name) => !inUse.has(name));
}

/** The fields after the ended drill Job `ended`, and its condition and events into the decision. */
function record(
  observed: DrillObserved,
  decision: DrillDecision,
  fields: DrillFields,
  ended: JobObserved,
  target: DrillTarget,
): DrillFields {
  const { job } = ended;
  const result = ended.result as AgentResult<'drill'> | undefined;
  const name = job.metadata?.name ?? '';
  const backup = job.metadata?.annotations?.[DRILL_ANNOTATIONS.backup] ?? '';
  const time = endTime(job) ?? observed.now.toISOString();
  const base = { time, backup, job: name };
  const leftovers =
    target.kind === 'volume' ? 'its scratch PVC is deleted' : 'a cleanup Job drops what it left on the drill server';
  let lastDrill: LastDrill;
  if (!result || killed(result)) {
    // What the pod left instead of a result is the tail of its log: the Job's own reason says more.
    const why = failedMessage(job) ?? 'no result';
    lastDrill = {
      ...base,
      result: 'Failed',
      message: `the drill of ${backup} ended without reporting (its agent was killed?): ${why}; ${leftovers}`,
    };
  } else if (result.ok) {
    const cleaned = result.cleanup?.length ? ` Cleaned up: ${result.cleanup.join('; ')}.` : '';
    const rtoSeconds = Math.ceil((result.rtoMs ?? 0) / 1000);
    const target = durationSeconds(observed.policy.spec.objectives?.rto);
    const verdict =
      target === undefined
        ? 'no RTO target set'
        : rtoSeconds <= target
          ? `within the ${target}s RTO target`
          : `over the ${target}s RTO target`;
    lastDrill = {
      ...base,
      result: 'Succeeded',
      rtoSeconds,
      ...(target !== undefined ? { rtoTargetSeconds: target } : {}),
      message: `${verifiedWhat(backup, result)}, in ${rtoSeconds}s (${verdict}).${cleaned}`,
    };
    decision.restorable.push({
      backup,
      condition: {
        type: 'Restorable',
        status: 'True',
        reason: 'DrillSucceeded',
        message: `drill ended ${time}: ${lastDrill.message}`,
      },
    });
    if (target !== undefined && rtoSeconds > target)
      decision.events.push({
        type: 'Warning',
        reason: 'DrillSlowerThanRTO',
        message: `the restore drill of ${backup} took ${rtoSeconds}s, over the ${target}s RTO target`,
      });
  } else {
    const { code, message } = result.error;
    lastDrill = {
      ...base,
      result: 'Failed',
      message: `${message} (${code}); ${leftovers}`,
    };
    if (!NOT_ABOUT_THE_BACKUP.has(code))
      decision.restorable.push({
        backup,
        condition: {
          type: 'Restorable',
          status: 'False',
          reason: 'DrillFailed',
          message: `drill ended ${time}: ${lastDrill.message}`,
        },
      });
  }
  lastDrill.message = lastDrill.message.slice(0, 4096);
  decision.events.push(
    lastDrill.result === 'Succeeded'
      ? { type: 'Normal', reason: 'DrillSucceeded', message: lastDrill.message }
      : { type: 'Warning', reason: 'DrillFailed', message: `restore drill of ${backup}: ${lastDrill.message}` },
  );
  return {
    lastDrill,
    ...(lastDrill.result === 'Succeeded'
      ? { lastDrillSuccessTime: time }
      : fields.lastDrillSuccessTime
        ? { lastDrillSuccessTime: fields.lastDrillSuccessTime }
        : {}),
    drills: (fields.drills ?? 0) + 1,
  };
}

/** What a verified drill restored and found, by what its task checked: tables, or a volume's files. */
function verifiedWhat(backup: string, result: AgentResult<'drill'> & { ok: true }): string {
  if (result.filesChecked !== undefined)
    return `restored ${backup} into a scratch PVC and found its ${result.filesChecked} files (${result.bytesChecked ?? 0} bytes) with the sizes and content the backup recorded`;
  return `restored ${backup} into a drill database and found the ${result.tablesChecked ?? 0} tables the backup recorded with their row counts${result.tablesChecksummed ? ` (${result.tablesChecksummed} with their content checksums)` : ''}`;
}

interface Restorable {
  name: string;
  snapshotId: string;
}

/** Successful Backups of the source held by the repository, oldest first. */
function restorableBackups(backups: Backup[], source: string, repository: string): Restorable[] {
  return backups
    .filter((b) => b.spec.source === source && b.status?.phase === 'Succeeded' && !b.metadata.deletionTimestamp)
    .map((b) => {
      const held = b.status?.repositories?.find((r) => r.repository === repository);
      const snapshotId = held ? (held.state === 'Succeeded' ? held.snapshotId : undefined) : b.status?.snapshotId;
      return { name: b.metadata.name ?? '', snapshotId, completed: instant(b.status?.completionTime) ?? 0 };
    })
    .filter((b): b is Restorable & { completed: number } => Boolean(b.snapshotId))
    .sort((a, b) => a.completed - b.completed)
    .map(({ name, snapshotId }) => ({ name, snapshotId }));
}

const scheduledOf = (job: k8s.V1Job) => instant(job.metadata?.annotations?.[DRILL_ANNOTATIONS.scheduled]) ?? 0;

function endTime(job: k8s.V1Job): string | undefined {
  const ended = job.status?.conditions?.find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  const time = job.status?.completionTime ?? ended?.lastTransitionTime;
  return time === undefined ? undefined : new Date(time).toISOString();
}

const failedMessage = (job: k8s.V1Job) =>
  job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')?.message;

/**
 * A drill that ended without a result of its own: its agent was killed (SIGKILL, a lost node) before
 * writing one, and what the kubelet put in the termination message instead is the tail of its JSON log.
 */
function killed(result: AgentResult<'drill'>): boolean {
  if (typeof result.ok !== 'boolean') return true;
  return !result.ok && result.error.code === 'Internal' && result.error.message.trimStart().startsWith('{');
}
