import type { BackupStatus } from '../../api/backup.ts';
import type { Backup } from '../../api/kinds.ts';
import { immutableUntil } from '../../repository/immutability.ts';
import { jobOutcome } from '../jobs/agent-result.ts';
import { type BackupDecision, type BackupObserved, jobFailure, SNAPSHOT_FINALIZER } from './decide.ts';
import { forgetJob, forgetJobName } from './job.ts';

/**
 * Who asked for a deleted Backup's snapshot to be forgotten. Plain deletion (`kubectl delete`, a
 * namespace going away) keeps it: only retention (which sets `retention` before deleting) or a user
 * annotating `tidemark.dev/forget=true` first removes data from the repositories.
 */
export const FORGET_ANNOTATION = 'tidemark.dev/forget';
export const FORGET_BY_RETENTION = 'retention';
export const FORGET_BY_USER = 'true';

export function forgetRequest(backup: Backup): 'retention' | 'user' | undefined {
  const value = backup.metadata.annotations?.[FORGET_ANNOTATION];
  return value === FORGET_BY_RETENTION ? 'retention' : value === FORGET_BY_USER ? 'user' : undefined;
}

/** The metadata change retention makes before deleting a Backup, so its snapshot goes with it. */
export function markForgetByRetention<M extends { annotations?: Record<string, string> }>(metadata: M): M {
  return { ...metadata, annotations: { ...metadata.annotations, [FORGET_ANNOTATION]: FORGET_BY_RETENTION } };
}

/** Why a stored copy stays in its repository although its Backup is being deleted; undefined: forget it. */
function keepReason(
  observed: BackupObserved,
  state: NonNullable<BackupStatus['repositories']>[number],
): string | undefined {
  const { backup, now } = observed;
  const request = forgetRequest(backup);
  if (!request)
    return `kept (plain deletion); annotate ${FORGET_ANNOTATION}=${FORGET_BY_USER} before deleting to remove it`;
  if (observed.namespaceTerminating) return 'kept: its namespace is being deleted, no forget Job can run there';
  const repository = observed.repositories.get(state.repository);
  if (!repository) return 'kept: the BackupRepository no longer exists';
  const period = repository.spec.immutability?.period;
  const writtenAt = state.completionTime ?? backup.status?.completionTime ?? '';
  const until = immutableUntil(writtenAt, period, now);
  if (until) return `kept: immutable until ${until.toISOString()} (immutability.period ${period})`;
  return undefined;
}

/**
 * A deleted Backup (R-RET, deletion guard rails): its snapshot is forgotten in a repository only when
 * retention or the user asked for it and the repository's immutability period is over; every copy
 * kept is recorded in one event when the finalizer goes. The finalizer never holds for a copy that
 * is kept, so deleting a namespace always completes.
 */
export function decideDeletion(observed: BackupObserved, decision: BackupDecision): BackupDecision {
  const { backup } = observed;
  if (!backup.metadata.finalizers?.includes(SNAPSHOT_FINALIZER)) return decision;
  const stored = (backup.status?.repositories ?? []).filter((r) => r.state === 'Succeeded' && r.snapshotId);
  const kept: string[] = [];
  let pending = 0;
  for (const state of stored) {
    const reason = keepReason(observed, state);
    const repository = observed.repositories.get(state.repository);
    if (reason || !repository) {
      kept.push(`${state.repository} (${reason})`);
      continue;
    }
    const name = forgetJobName(backup, state.repository);
    const job = observed.jobs.get(name);
    const outcome = job && jobOutcome(job.job);
    if (!job) {
      decision.createJobs.push(
        forgetJob(backup, observed.policy, repository, state.snapshotId ?? '', name, observed.settings),
      );
      pending++;
    } else if (!outcome) pending++;
    else if (outcome === 'Failed')
      decision.events.push({
        type: 'Warning',
        reason: 'ForgetFailed',
        message: `could not remove snapshot ${state.snapshotId?.slice(0, 12)} from ${state.repository}: ${job.result?.error?.message ?? jobFailure(job.job)}; prune will not free it`,
      });
  }
  if (pending > 0) return decision;
  decision.removeFinalizer = true;
  if (kept.length > 0)
    decision.events.push({
      type: 'Normal',
      reason: 'SnapshotKept',
      message: `Backup ${backup.metadata.name} deleted; snapshot ${backup.status?.snapshotId?.slice(0, 12)} kept in ${kept.join(', ')}`,
    });
  return decision;
}
