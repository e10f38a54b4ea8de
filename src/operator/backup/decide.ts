import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { BackupStatus } from '../../api/backup.ts';
import type { Condition } from '../../api/common.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { formatBytes } from '../../units.ts';
import type { AgentSettings } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { setCondition } from '../runtime/conditions.ts';
import { canonicalJson } from '../runtime/resources.ts';
import { decideDeletion } from './deletion.ts';
import { backupJob, backupJobName, forgetJob, forgetJobName, replicaJobName, replicateJob } from './job.ts';
import {
  SNAPSHOT_POLL_MS,
  type VolumeSnapshotObserved,
  volumeSnapshotLeftovers,
  volumeSnapshotStep,
} from './volume-snapshot.ts';

export const SNAPSHOT_FINALIZER = 'tidemark.dev/snapshots';
/**
 * Set by the policy controller: the repositories whose retention dropped this Backup while another
 * repository's retention keeps it (comma-separated). Their copies are forgotten; the object stays.
 */
export const RETIRED_ANNOTATION = 'tidemark.dev/retired-from';

/** On a Backup re-created from a repository's catalog: that BackupRepository (catalog controller). */
export const IMPORTED_FROM = 'tidemark.dev/imported-from';

export function retiredFrom(backup: Backup): string[] {
  return (backup.metadata.annotations?.[RETIRED_ANNOTATION] ?? '').split(',').filter(Boolean);
}

export interface BackupObserved {
  backup: Backup;
  policy?: BackupPolicy;
  repositories: Map<string, BackupRepository>;
  /** PVCs of a volume source (by name, or matching its selector). */
  claims: string[];
  /** Jobs created for this Backup object (matched by its uid), by name. */
  jobs: Map<string, JobObserved>;
  /** Jobs the API server refused to create in this pass, by name, with its message (the shell decides again). */
  rejected?: Map<string, string>;
  settings: AgentSettings;
  now: Date;
  /** Observed only for a volume source with volumeSnapshotClassName (see volume-snapshot.ts). */
  volumeSnapshots?: VolumeSnapshotObserved;
  /** Set while the Backup is being deleted: its namespace is going too (no forget Job can be created there). */
  namespaceTerminating?: boolean;
}

export interface BackupDecision {
  createJobs: k8s.V1Job[];
  status?: BackupStatus;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
  addFinalizer?: boolean;
  removeFinalizer?: boolean;
  requeueAfterMs?: number;
  /** VolumeSnapshots and PVCs restored from them to create before the backup Job, or to delete after it. */
  createVolumeSnapshotObjects?: k8s.KubernetesObject[];
  deleteVolumeSnapshotObjects?: { snapshots: string[]; claims: string[] };
}

/**
 * True when the decision changes nothing: no Job, object, finalizer, event or status to write. Decided
 * from a cached Backup, such a decision needs no fresh read (the next change arrives as a watch event);
 * any other is decided again from the API server's copy, so a cache behind its own last write never
 * acts twice (a second Job, a second BackupSucceeded event).
 */
export function changesNothing(decision: BackupDecision, backup: Backup): boolean {
  return (
    decision.createJobs.length === 0 &&
    decision.events.length === 0 &&
    !decision.addFinalizer &&
    !decision.removeFinalizer &&
    !decision.createVolumeSnapshotObjects?.length &&
    !decision.deleteVolumeSnapshotObjects?.snapshots.length &&
    !decision.deleteVolumeSnapshotObjects?.claims.length &&
    (decision.status === undefined || canonicalJson(decision.status) === canonicalJson(backup.status ?? {}))
  );
}

export function isFinished(backup: Backup): boolean {
  return backup.status?.phase === 'Succeeded' || backup.status?.phase === 'Failed';
}

/** Only a run whose Job is yet to be created looks at the claims (the shell lists them only then). */
export function needsClaims(backup: Backup): boolean {
  return !backup.status?.jobName && !isFinished(backup);
}

/**
 * The Backup controller's decision, pure (R-BACKUP, R-REPL): start the backup Job, record its result,
 * then copy to every replica (a Job each); on deletion, see decideDeletion.
 */
export function decideBackup(observed: BackupObserved): BackupDecision {
  const { backup, now } = observed;
  const status: BackupStatus = structuredClone(backup.status ?? {});
  const decision: BackupDecision = { createJobs: [], events: [] };
  const event = (type: 'Normal' | 'Warning', reason: string, message: string) =>
    decision.events.push({ type, reason, message });
  const setPhase = (phase: NonNullable<BackupStatus['phase']>, reason: string, message: string) => {
    status.phase = phase;
    const succeeded: Condition['status'] = phase === 'Succeeded' ? 'True' : phase === 'Failed' ? 'False' : 'Unknown';
    status.conditions = setCondition(
      status.conditions,
      { type: 'Succeeded', status: succeeded, reason, message },
      backup.metadata.generation,
      now,
    );
  };
  const fail = (reason: string, message: string) => {
    setPhase('Failed', reason, message);
    status.error = message;
    status.completionTime = now.toISOString();
    event('Warning', 'BackupFailed', message);
  };

  if (backup.metadata.deletionTimestamp) return decideDeletion(observed, decision);
  // Its status (Succeeded) is written right after creation by the catalog controller: never run it.
  if (!status.phase && backup.metadata.annotations?.[IMPORTED_FROM]) return decision;

  const { policy } = observed;
  const source = policy?.spec.sources.find((s) => s.name === backup.spec.source);
  const primary = policy ? observed.repositories.get(policy.spec.repository) : undefined;
  const primaryJobName = status.jobName ?? backupJobName(backup);
  const primaryJob = observed.jobs.get(primaryJobName) as JobObserved<'backup'> | undefined;
  const rejection = observed.rejected?.get(primaryJobName);
  const missing = !policy
    ? { reason: 'PolicyNotFound', message: `BackupPolicy ${backup.spec.policy} does not exist` }
    : !source
      ? { reason: 'SourceNotFound', message: `BackupPolicy ${backup.spec.policy} has no source ${backup.spec.source}` }
      : !primary
        ? { reason: 'RepositoryNotFound', message: `BackupRepository ${policy.spec.repository} does not exist` }
        : undefined;

  if (status.phase === undefined || status.phase === 'Pending' || status.phase === 'Running') {
    if (missing && !status.jobName) {
      // Created before what it needs (applied out of order): it waits, holding nothing; the policy
      // and repository watches requeue it.
      setPhase('Pending', missing.reason, `waiting: ${missing.message}`);
      if (backup.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason !== missing.reason)
        event('Normal', 'Waiting', `waiting: ${missing.message}`);
    } else if (!policy || !source || !primary)
      fail(missing?.reason ?? 'SourceNotFound', `${missing?.message} (removed while the run was in progress)`);
    else if (rejection) fail('JobRejected', `could not create the backup ${rejection}`);
    else if (!primaryJob && status.jobName) {
      fail(
        'JobLost',
        `the backup Job ${status.jobName} disappeared before it finished (deleted, or lost while the operator was down)`,
      );
    } else if (!primaryJob && source.volume && observed.claims.length === 0)
      fail('SourceNotFound', `no PersistentVolumeClaim matches source ${source.name}`);
    else if (!primaryJob) {
      const step = observed.volumeSnapshots
        ? volumeSnapshotStep(backup, source, observed.claims, observed.volumeSnapshots, now)
        : undefined;
      if (step) decision.createVolumeSnapshotObjects = step.kind === 'failed' ? [] : step.create;
      if (step?.kind === 'failed') fail(step.reason, step.message);
      else if (step?.kind === 'waiting') {
        setPhase('Pending', 'WaitingForVolumeSnapshot', step.message);
        decision.requeueAfterMs = SNAPSHOT_POLL_MS;
      } else {
        decision.createJobs.push(
          backupJob(backup, policy, primary, observed.claims, observed.settings, step?.readFrom),
        );
        status.jobName = primaryJobName;
        status.startTime = now.toISOString();
        setPhase('Running', 'JobCreated', `Job ${primaryJobName} is backing up ${backup.spec.source}`);
        event(
          'Normal',
          'BackupStarted',
          `${backup.spec.type ?? 'full'} backup of ${backup.spec.source} started (Job ${primaryJobName})`,
        );
      }
    } else {
      const outcome = jobOutcome(primaryJob.job);
      if (outcome === 'Complete' && primaryJob.result?.ok) recordSuccess(status, primaryJob.result, policy, now);
      else if (outcome)
        fail(
          primaryJob.cannotStart ? 'PodCannotStart' : 'JobFailed',
          primaryJob.cannotStart
            ? `Job ${primaryJobName}: ${primaryJob.result?.error?.message}`
            : (primaryJob.result?.error?.message ?? `Job ${primaryJobName} failed: ${jobFailure(primaryJob.job)}`),
        );
      if (outcome === 'Complete' && primaryJob.result?.ok) {
        setPhase('Succeeded', 'Completed', `snapshot ${status.snapshotId?.slice(0, 12)} in ${policy.spec.repository}`);
        event(
          'Normal',
          'BackupSucceeded',
          `${backup.spec.source}: ${status.size} read, ${formatBytes(status.uploadedBytes ?? 0)} uploaded, snapshot ${status.snapshotId?.slice(0, 12)}`,
        );
        decision.addFinalizer = true;
      }
      if (!outcome) setPhase('Running', 'JobRunning', `Job ${primaryJobName} is running`);
    }
  }

  if (status.phase === 'Succeeded' && policy && primary) replicate(observed, policy, primary, status, decision, now);
  if (status.phase === 'Succeeded') retire(observed, status, decision);
  if ((status.phase === 'Succeeded' || status.phase === 'Failed') && observed.volumeSnapshots)
    decision.deleteVolumeSnapshotObjects = volumeSnapshotLeftovers(observed.volumeSnapshots);
  decision.status = status;
  return decision;
}

function recordSuccess(
  status: BackupStatus,
  result: Extract<AgentResult<'backup'>, { ok: true }>,
  policy: BackupPolicy,
  now: Date,
): void {
  status.snapshotId = result.snapshotId ?? '';
  if (result.chainId) status.chainId = result.chainId;
  status.logicalBytes = result.logicalBytes ?? 0;
  status.uploadedBytes = result.uploadedBytes ?? 0;
  status.size = formatBytes(result.logicalBytes ?? 0);
  status.objects = result.objects ?? [];
  if (result.skipped?.length) status.skipped = result.skipped.map((s) => ({ name: s.path, reason: s.reason }));
  status.completionTime = now.toISOString();
  delete status.error;
  status.repositories = [
    {
      repository: policy.spec.repository,
      role: 'primary',
      state: 'Succeeded',
      snapshotId: status.snapshotId,
      completionTime: now.toISOString(),
    },
    ...(policy.spec.replicas ?? []).map((r) => ({
      repository: r.repository,
      role: 'replica' as const,
      state: 'Pending' as const,
    })),
  ];
}

/** Back-off before retrying a failed replica copy: 30 s after the first failure, doubling to 10 minutes. */
export function replicaRetryDelayMs(attempt: number): number {
  return Math.min(REPLICA_RETRY_MAX_MS, REPLICA_RETRY_FIRST_MS * 2 ** Math.max(0, attempt - 1));
}
const REPLICA_RETRY_FIRST_MS = 30_000;
const REPLICA_RETRY_MAX_MS = 10 * 60_000;

type RepositoryState = NonNullable<BackupStatus['repositories']>[number];

/**
 * R-REPL: copies the snapshot to every replica, a Job per attempt; a failed copy is retried with
 * back-off (attempts and nextRetryTime in its state) until it succeeds, or until retention retires
 * the snapshot from that replica or from the primary it copies from.
 */
function replicate(
  observed: BackupObserved,
  policy: BackupPolicy,
  primary: BackupRepository,
  status: BackupStatus,
  decision: BackupDecision,
  now: Date,
): void {
  const retired = retiredFrom(observed.backup);
  const sourceGone = retired.includes(primary.metadata.name ?? '');
  for (const state of status.repositories ?? []) {
    if (state.role !== 'replica') continue;
    if (state.state === 'Failed' && state.nextRetryTime) {
      if (sourceGone || retired.includes(state.repository)) {
        delete state.nextRetryTime;
        state.message = `${state.message ?? ''} (not retried: retention retired this snapshot)`.trim();
        continue;
      }
      const wait = Date.parse(state.nextRetryTime) - now.getTime();
      if (wait > 0) {
        decision.requeueAfterMs = Math.min(decision.requeueAfterMs ?? wait, wait + 5);
        continue;
      }
      delete state.nextRetryTime;
      state.attempts = (state.attempts ?? 1) + 1;
      state.state = 'Pending';
    }
    if (state.state !== 'Pending' && state.state !== 'Running') continue;
    const attempt = state.attempts ?? 1;
    state.attempts = attempt;
    const replica = observed.repositories.get(state.repository);
    if (!replica) {
      copyFailed(state, `BackupRepository ${state.repository} does not exist`, decision, now);
      continue;
    }
    const name = replicaJobName(observed.backup, state.repository, attempt);
    const job = observed.jobs.get(name) as JobObserved<'replicate'> | undefined;
    const rejection = observed.rejected?.get(name);
    if (rejection) {
      copyFailed(state, `could not create the copy ${rejection}`, decision, now);
      continue;
    }
    if (!job) {
      if (state.state === 'Running' && state.jobName === name) {
        copyFailed(state, `Job ${name} disappeared before it finished`, decision, now);
        continue;
      }
      decision.createJobs.push(
        replicateJob(observed.backup, policy, primary, replica, status.snapshotId ?? '', observed.settings, attempt),
      );
      state.state = 'Running';
      state.jobName = name;
      continue;
    }
    const outcome = jobOutcome(job.job);
    if (outcome === 'Complete' && job.result?.ok) {
      state.state = 'Succeeded';
      state.snapshotId = status.snapshotId ?? '';
      state.completionTime = now.toISOString();
      delete state.message;
      delete state.failureTime;
      decision.events.push({
        type: 'Normal',
        reason: 'Replicated',
        message: `copied to ${state.repository} (${formatBytes(job.result.uploadedBytes ?? 0)} uploaded${attempt > 1 ? `, attempt ${attempt}` : ''})`,
      });
    } else if (outcome) copyFailed(state, job.result?.error?.message ?? jobFailure(job.job), decision, now);
    else if (state.state === 'Pending') state.state = 'Running';
  }
}

function copyFailed(state: RepositoryState, message: string, decision: BackupDecision, now: Date): void {
  const attempt = state.attempts ?? 1;
  const delay = replicaRetryDelayMs(attempt);
  state.state = 'Failed';
  state.message = message;
  state.failureTime = now.toISOString();
  state.nextRetryTime = new Date(now.getTime() + delay).toISOString();
  decision.requeueAfterMs = Math.min(decision.requeueAfterMs ?? delay, delay + 5);
  decision.events.push({
    type: 'Warning',
    reason: 'ReplicationFailed',
    message: `copy to ${state.repository} failed (attempt ${attempt}, next at ${state.nextRetryTime}): ${message}`,
  });
}

/**
 * R-RET per repository: forgets the snapshot in each repository whose retention dropped it (the
 * policy says which in RETIRED_ANNOTATION), once no copy is in flight (a replica copies from the
 * primary).
 */
function retire(observed: BackupObserved, status: BackupStatus, decision: BackupDecision): void {
  if (status.repositories?.some((r) => r.state === 'Pending' || r.state === 'Running')) return;
  for (const name of retiredFrom(observed.backup)) {
    const state = status.repositories?.find((r) => r.repository === name && r.state === 'Succeeded');
    const repository = observed.repositories.get(name);
    if (!state || !repository) continue;
    const jobName = forgetJobName(observed.backup, name);
    const job = observed.jobs.get(jobName);
    const snapshot = state.snapshotId ?? status.snapshotId ?? '';
    const rejection = observed.rejected?.get(jobName);
    if (rejection) {
      decision.events.push({
        type: 'Warning',
        reason: 'ForgetFailed',
        message: `could not remove snapshot ${snapshot.slice(0, 12)} from ${name}: could not create ${rejection}`,
      });
      continue;
    }
    if (!job) {
      decision.createJobs.push(
        forgetJob(observed.backup, observed.policy, repository, snapshot, jobName, observed.settings),
      );
      continue;
    }
    const outcome = jobOutcome(job.job);
    if (outcome === 'Complete' && job.result?.ok) {
      state.state = 'Forgotten';
      state.message = `removed by the retention of ${name}; the repositories that keep it still hold it`;
      decision.events.push({
        type: 'Normal',
        reason: 'SnapshotForgotten',
        message: `retention of ${name} removed snapshot ${snapshot.slice(0, 12)} there; other repositories keep it`,
      });
    } else if (outcome) {
      const message = `could not remove snapshot ${snapshot.slice(0, 12)} from ${name}: ${job.result?.error?.message ?? jobFailure(job.job)}`;
      if (state.message !== message) {
        state.message = message;
        decision.events.push({ type: 'Warning', reason: 'ForgetFailed', message });
      }
    }
  }
}

export function jobFailure(job: k8s.V1Job): string {
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed');
  return `${failed?.reason ?? 'Failed'}${failed?.message ? `: ${failed.message}` : ''}`;
}
