import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';

/**
 * How long a request waits for a Backup, policy or repository that does not exist (yet), counted from
 * the request's creation: objects applied together arrive in any order, and a cluster being rebuilt
 * re-creates its BackupRepository some time after. A Backup that exists and is still running is
 * waited for without this bound (its Job has a deadline of its own).
 */
export const WAIT_FOR_MISSING_MS = 10 * 60_000;

/** With no policy to take approvers from, a restore straight from a repository needs one approval from this group. */
export const DEFAULT_APPROVER_GROUP = 'tidemark:restore-approvers';

export type ApprovalRule = NonNullable<NonNullable<BackupPolicy['spec']['restore']>['approval']>;

/** Nothing to restore yet: what the request waits for, and until when (undefined: no bound). */
export interface Wait {
  reason: 'WaitingForBackup' | 'WaitingForRepository';
  message: string;
  deadline?: Date;
}
export type Failure = { reason: string; message: string };
export type Resolution<T> = T | { wait: Wait } | { failure: Failure };

const inProgress = (b: Backup) =>
  !b.metadata.deletionTimestamp && b.status?.phase !== 'Succeeded' && b.status?.phase !== 'Failed';

/** Waits until the bound after `createdAt`, then fails with `failure`. */
function waitBounded(wait: Omit<Wait, 'deadline'>, failure: Failure, createdAt: Date, now: Date) {
  const deadline = new Date(createdAt.getTime() + WAIT_FOR_MISSING_MS);
  if (now.getTime() >= deadline.getTime())
    return { failure: { ...failure, message: `${failure.message} (waited ${WAIT_FOR_MISSING_MS / 60_000}m)` } };
  return { wait: { ...wait, deadline } };
}

/**
 * The Backup a request names: by name, or the newest Succeeded Backup of policy + source (completed
 * before `before` when given). A named Backup still running, or a run of policy + source in progress
 * when none has succeeded, is waited for; one that does not exist is waited for up to
 * WAIT_FOR_MISSING_MS. Fails when the named Backup failed or is being deleted.
 */
export function resolveBackup(
  from: RestoreRequest['spec']['from'],
  backups: Backup[],
  createdAt: Date,
  now: Date,
): Resolution<{ backup: Backup }> {
  if (from.backupName) {
    const backup = backups.find((b) => b.metadata.name === from.backupName);
    if (!backup)
      return waitBounded(
        { reason: 'WaitingForBackup', message: `waiting for Backup ${from.backupName}, which does not exist yet` },
        { reason: 'BackupNotFound', message: `Backup ${from.backupName} does not exist` },
        createdAt,
        now,
      );
    if (backup.metadata.deletionTimestamp)
      return { failure: { reason: 'BackupNotFound', message: `Backup ${from.backupName} is being deleted` } };
    if (backup.status?.phase === 'Failed')
      return {
        failure: {
          reason: 'BackupNotRestorable',
          message: `Backup ${from.backupName} failed; only a Succeeded Backup can be restored`,
        },
      };
    if (backup.status?.phase !== 'Succeeded')
      return {
        wait: {
          reason: 'WaitingForBackup',
          message: `waiting for Backup ${from.backupName} (phase ${backup.status?.phase ?? 'Pending'}) to succeed`,
        },
      };
    return { backup };
  }
  const before = from.before ? Date.parse(from.before) : undefined;
  const ofSource = backups.filter((b) => b.spec.policy === from.policy && b.spec.source === from.source);
  const candidates = ofSource
    .filter(
      (b) =>
        b.status?.phase === 'Succeeded' &&
        b.status.completionTime &&
        !b.metadata.deletionTimestamp &&
        (before === undefined || Date.parse(b.status.completionTime) < before),
    )
    .sort(
      (a, b) =>
        Date.parse(b.status?.completionTime ?? '') - Date.parse(a.status?.completionTime ?? '') ||
        (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''),
    );
  const newest = candidates[0];
  if (newest) return { backup: newest };
  const what = `policy ${from.policy} source ${from.source}${from.before ? ` completed before ${from.before}` : ''}`;
  // A run in progress can still qualify only if it may complete before `before`.
  const running = (before === undefined || before > now.getTime()) && ofSource.find(inProgress);
  if (running)
    return {
      wait: {
        reason: 'WaitingForBackup',
        message: `no Succeeded Backup of ${what} yet; waiting for Backup ${running.metadata.name} (phase ${running.status?.phase ?? 'Pending'})`,
      },
    };
  return waitBounded(
    { reason: 'WaitingForBackup', message: `waiting for a Succeeded Backup of ${what}; none exists or runs yet` },
    { reason: 'BackupNotFound', message: `no Succeeded Backup of ${what}` },
    createdAt,
    now,
  );
}

/** A request straight from a repository: the BackupRepository (waited for while missing). */
export function resolveRepository(
  name: string,
  repositories: Map<string, BackupRepository>,
  createdAt: Date,
  now: Date,
): Resolution<{ repository: BackupRepository }> {
  const repository = repositories.get(name);
  if (repository && !repository.metadata.deletionTimestamp) return { repository };
  return waitBounded(
    { reason: 'WaitingForRepository', message: `waiting for BackupRepository ${name}, which does not exist yet` },
    { reason: 'RepositoryNotFound', message: `BackupRepository ${name} does not exist` },
    createdAt,
    now,
  );
}

/**
 * Whose approval a restore needs, and where that rule comes from. The Backup's own policy when it
 * exists. Otherwise (policy gone, or a restore straight from a repository) the namespace's policy
 * named by the snapshot's source identity, else the strictest rule among the namespace's policies
 * that use the repository; with none of those, one approval from DEFAULT_APPROVER_GROUP.
 */
export function approvalRule(options: {
  policy?: BackupPolicy | undefined;
  namespace: string;
  repository: string;
  sourceName?: string | undefined;
  policies: Map<string, BackupPolicy>;
}): { rule: ApprovalRule | undefined; from: string; policy?: BackupPolicy } {
  const named = (p: BackupPolicy) => ({ rule: p.spec.restore?.approval, from: `policy ${p.metadata.name}`, policy: p });
  if (options.policy) return named(options.policy);
  const [ns, policyName] = (options.sourceName ?? '').split('/');
  const byIdentity = ns === options.namespace && policyName ? options.policies.get(policyName) : undefined;
  if (byIdentity) return named(byIdentity);
  const using = [...options.policies.values()]
    .filter(
      (p) =>
        p.spec.repository === options.repository ||
        (p.spec.replicas ?? []).some((r) => r.repository === options.repository),
    )
    .sort(
      (a, b) =>
        (b.spec.restore?.approval?.required ?? 0) - (a.spec.restore?.approval?.required ?? 0) ||
        (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
  if (using[0]) return named(using[0]);
  return {
    rule: { required: 1, approverGroups: [DEFAULT_APPROVER_GROUP] },
    from: `no BackupPolicy in ${options.namespace} uses repository ${options.repository}, so the default rule`,
  };
}
