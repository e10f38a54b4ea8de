import type * as k8s from '@kubernetes/client-node';
import type { SnapshotChoice } from '../../agent/tasks/snapshot.ts';
import type { Condition } from '../../api/common.ts';
import { formatDuration, parseDuration } from '../../api/duration.ts';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import type { RestoreRequestStatus } from '../../api/restorerequest.ts';
import type { ErrorCode } from '../../errors.ts';
import type { RestoreTarget } from '../jobs/access.ts';
import type { AgentSettings } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { setCondition } from '../runtime/conditions.ts';
import { restoreJob, restoreJobName } from './job.ts';
import {
  type ApprovalRule,
  approvalRule,
  type Resolution,
  resolveBackup,
  resolveRepository,
  type Wait,
} from './resolve.ts';
import { checkTarget, chooseScript, liveSourceCandidates } from './rules.ts';

export interface RestoreObserved {
  request: RestoreRequest;
  /** Backups of the request's namespace. */
  backups: Backup[];
  policies: Map<string, BackupPolicy>;
  repositories: Map<string, BackupRepository>;
  /** Jobs owned by this request, by name. */
  jobs: Map<string, JobObserved>;
  /** Names of the PVCs in the namespace, when the target is a volume (undefined: not looked up). */
  claims?: Set<string>;
  /** Their labels, looked up with them: a PVC a volume source selects by label is a live source. */
  claimLabels?: Map<string, Record<string, string>>;
  /** Jobs the API server refused to create, by name, with its message (the shell decides again with them). */
  rejected?: Map<string, string>;
  settings: AgentSettings;
  now: Date;
}

export interface RestoreEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface RestoreDecision {
  createJobs: k8s.V1Job[];
  status?: RestoreRequestStatus;
  events: RestoreEvent[];
  requeueAfterMs?: number;
}

/**
 * Agent error codes that say the repository could not be read (unreachable, damaged, refused, gone):
 * the cases where another copy of the same snapshot may succeed. Anything else (a non-empty target,
 * bad SQL, an unreachable database) would fail the same way from a replica.
 */
export const FALLBACK_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'Transient',
  'NotFound',
  'Corrupt',
  'AccessDenied',
  'ContainerMissing',
]);

/**
 * The approvals that count: distinct users, never the requester, each by the rule read from the
 * policy (never from status, which is only a copy for the admission policy). A user counts when the
 * rule lists them in approverUsers, or when one of the groups their approval records is in
 * approverGroups; the admission policy checked those groups against `request.userInfo.groups` when
 * the approval was added, so they are the groups the API server saw.
 */
export function countApprovals(
  approvals: RestoreRequest['spec']['approvals'],
  rule: Pick<ApprovalRule, 'approverUsers' | 'approverGroups'>,
  requestedBy: string | undefined,
): string[] {
  const users = new Set(rule.approverUsers ?? []);
  const groups = new Set(rule.approverGroups ?? []);
  const counted: string[] = [];
  for (const { user, groups: recorded } of approvals ?? []) {
    if (!user || user === requestedBy || counted.includes(user)) continue;
    if (users.has(user) || (recorded ?? []).some((g) => groups.has(g))) counted.push(user);
  }
  return counted;
}

/**
 * Where to restore to. `original` is the policy source itself (its connection Secret and database,
 * or its PVC); a postgres/mysql target brings its own Secret and database; a volume target names a
 * PVC in the request's namespace. Refuses engine mismatches early, before anyone approves.
 */
export function resolveTarget(
  request: RestoreRequest,
  backup: Backup | undefined,
  policy: BackupPolicy | undefined,
): { target: RestoreTarget } | { reason: string; message: string } {
  const { target } = request.spec;
  const source = backup && policy?.spec.sources.find((s) => s.name === backup.spec.source);
  const invalid = (message: string) => ({ reason: 'InvalidTarget', message });
  const sourceDb = source?.postgres ?? source?.mysql;
  if (target.database && sourceDb && !sourceDb.allDatabases && !sourceDb.databases?.includes(target.database))
    return invalid(
      `target.database ${target.database} is not one of the databases source ${source?.name} backs up (${(sourceDb.databases ?? []).join(', ')})`,
    );
  const several = sourceDb && (sourceDb.allDatabases || (sourceDb.databases ?? []).length > 1);
  if (several && !target.database)
    return invalid(
      `source ${source?.name} backs up several databases: name the one to restore in spec.target.database`,
    );
  if (target.original) {
    if (!source)
      return {
        reason: 'SourceNotFound',
        message: backup
          ? `policy ${backup.spec.policy} no longer exists or has no source ${backup.spec.source}, so its original target is unknown; name the target`
          : 'a restore from a repository snapshot has no original target; name the target',
      };
    if (source.volume) {
      if (!source.volume.claimName)
        return invalid(
          `source ${source.name} selects its PVCs by label; restoring them in place is not supported yet, restore into a volume target`,
        );
      return { target: { kind: 'volume', claimName: source.volume.claimName } };
    }
    const database = target.database ?? sourceDb?.databases?.[0] ?? '';
    return {
      target: {
        kind: 'database',
        engine: source.postgres ? 'postgres' : 'mysql',
        connectionSecret: sourceDb?.connectionSecret.name ?? '',
        database,
        ...(sourceDb?.tls ? { tls: sourceDb.tls } : {}),
      },
    };
  }
  if (target.volume) {
    if (target.volume.namespace && target.volume.namespace !== request.metadata.namespace)
      return { reason: 'Unsupported', message: 'cross-namespace volume restores are not supported yet' };
    if (source && !source.volume)
      return invalid(
        `Backup ${backup?.metadata.name} is a database backup; restore it into a postgres or mysql target`,
      );
    return { target: { kind: 'volume', claimName: target.volume.claimName } };
  }
  const engine = target.postgres ? 'postgres' : 'mysql';
  const db = target.postgres ?? target.mysql;
  if (!db) return invalid('set exactly one target: original, postgres, mysql or volume');
  if (source && !source[engine])
    return invalid(
      `Backup ${backup?.metadata.name} is a ${source.volume ? 'volume' : source.postgres ? 'PostgreSQL' : 'MySQL/MariaDB'} backup; it cannot be restored into a ${engine} target`,
    );
  return {
    target: {
      kind: 'database',
      engine,
      connectionSecret: db.connectionSecret.name,
      database: db.database,
      ...(db.tls ? { tls: db.tls } : {}),
    },
  };
}

/**
 * The backup's counts for what this request restores. A multi-database backup (allDatabases, or a
 * list of several) names its objects `<database>.<schema>.<table>`; restoring one database of it
 * expects that database's objects, without the prefix.
 */
export function expectedCounts(
  backup: Backup,
  policy: BackupPolicy,
  database: string | undefined,
): { name: string; records: number }[] {
  const objects = backup.status?.objects ?? [];
  const source = policy.spec.sources.find((s) => s.name === backup.spec.source);
  const db = source?.postgres ?? source?.mysql;
  const several = db && (db.allDatabases || (db.databases ?? []).length > 1);
  if (!database || !several) return objects;
  const prefix = `${database}.`;
  return objects.filter((o) => o.name.startsWith(prefix)).map((o) => ({ ...o, name: o.name.slice(prefix.length) }));
}

/**
 * When the recovery clock starts: once approved for a request that needed approval (the wait for
 * people is not the system's recovery time), else at the request's creation.
 */
export function rtoStart(request: RestoreRequest, status: RestoreRequestStatus): Date | undefined {
  const approved = status.conditions?.find((c) => c.type === 'Approved' && c.status === 'True');
  const start =
    (status.approvalsRequired ?? 0) > 0 && approved
      ? approved.lastTransitionTime
      : (request.metadata.creationTimestamp ?? status.startTime);
  return start ? new Date(start) : undefined;
}

/**
 * The RestoreRequest controller's decision, pure (R-RESTORE, R-OBJ): resolve the Backup once, check
 * the target, wait for approvals, run the restore Job from the primary, fall back once to a replica
 * when the primary could not be read, and record counts, times and the achieved RTO.
 */
export function decideRestore(observed: RestoreObserved): RestoreDecision {
  const { request, now } = observed;
  const status: RestoreRequestStatus = structuredClone(request.status ?? {});
  const decision: RestoreDecision = { createJobs: [], events: [], status };
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return decision;
  const event = (type: RestoreEvent['type'], reason: string, message: string) =>
    decision.events.push({ type, reason, message });
  const condition = (type: string, value: Condition['status'], reason: string, message: string) => {
    status.conditions = setCondition(
      status.conditions,
      { type, status: value, reason, message },
      request.metadata.generation,
      now,
    );
  };
  const fail = (reason: string, message: string) => {
    status.phase = 'Failed';
    status.error = message;
    status.completionTime = now.toISOString();
    condition('Succeeded', 'False', reason, message);
    event('Warning', 'RestoreFailed', message);
    return decision;
  };

  if (status.jobName) return decideRunning(observed, status, decision, condition, fail);

  const wait = (w: Wait) => {
    if (status.phase !== 'Pending') event('Normal', 'RestoreWaiting', w.message);
    // A named Backup seen while waiting is pinned: its deletion then fails the request at once.
    const named = request.spec.from.backupName;
    if (named && observed.backups.some((b) => b.metadata.name === named)) status.backupName = named;
    status.phase = 'Pending';
    condition('Resolved', 'False', w.reason, w.message);
    if (w.deadline) decision.requeueAfterMs = Math.max(1000, w.deadline.getTime() - now.getTime() + 1000);
    return decision;
  };
  const resolved = resolveWhat(observed);
  if ('wait' in resolved) return wait(resolved.wait);
  if ('failure' in resolved) {
    condition('Resolved', 'False', resolved.failure.reason, resolved.failure.message);
    return fail(resolved.failure.reason, resolved.failure.message);
  }
  const { backup, repository, snapshot } = resolved;
  if (backup) status.backupName = backup.metadata.name ?? '';
  condition('Resolved', 'True', 'Resolved', describeSnapshot(backup, repository, snapshot));

  const approval = approvalRule({
    policy: backup ? observed.policies.get(backup.spec.policy) : undefined,
    namespace: request.metadata.namespace ?? '',
    repository: repository.metadata.name ?? '',
    sourceName: 'source' in snapshot ? snapshot.source : backup ? sourceIdentity(backup) : undefined,
    policies: observed.policies,
  });
  // Only the Backup's own policy knows its sources, so only it can check (and define) the target.
  const policy = backup && approval.policy?.metadata.name === backup.spec.policy ? approval.policy : undefined;
  const resolvedTarget = resolveTarget(request, backup, policy);
  if ('reason' in resolvedTarget) return fail(resolvedTarget.reason, resolvedTarget.message);
  const { target } = resolvedTarget;
  // Refused before anyone approves: an approver approves a restore the policy allows, not a request's wishes.
  const refused = checkTarget(
    request,
    target,
    approval.policy,
    observed.policies.values(),
    repository.metadata.name ?? '',
    observed.claimLabels,
  );
  if (refused) return fail(refused.reason, refused.message);
  const chosen = chooseScript(request, approval.policy);
  if ('reason' in chosen) return fail(chosen.reason, chosen.message);
  if (target.kind === 'volume' && observed.claims && !observed.claims.has(target.claimName))
    return fail('InvalidTarget', `PersistentVolumeClaim ${target.claimName} does not exist`);

  const rule = approval.rule;
  const what = backup ? `Backup ${backup.metadata.name}` : describeSnapshot(backup, repository, snapshot);
  if (rule && rule.required > 0) {
    status.approvalsRequired = rule.required;
    status.approverGroups = rule.approverGroups ?? [];
    status.approverUsers = rule.approverUsers ?? [];
    if (!request.spec.requestedBy)
      return fail(
        'RequesterUnknown',
        `${approval.from} requires approval, but spec.requestedBy is empty, so the requester cannot be excluded from the approvers`,
      );
    const counted = countApprovals(request.spec.approvals, rule, request.spec.requestedBy);
    status.approvedBy = counted;
    status.approvalSummary = `${Math.min(counted.length, rule.required)}/${rule.required}`;
    if (counted.length < rule.required) {
      const who = [
        ...(rule.approverUsers?.length ? [`users ${rule.approverUsers.join(', ')}`] : []),
        ...(rule.approverGroups?.length ? [`members of ${rule.approverGroups.join(', ')}`] : []),
      ].join(' or ');
      const message = `${counted.length} of ${rule.required} approvals from ${who} (not ${request.spec.requestedBy}), required by ${approval.from}`;
      if (status.phase !== 'PendingApproval')
        event('Normal', 'RestorePendingApproval', `restore of ${what} waits for approval: ${message}`);
      status.phase = 'PendingApproval';
      condition('Approved', 'False', 'WaitingForApprovals', message);
      condition('Succeeded', 'Unknown', 'PendingApproval', message);
      return decision;
    }
    condition('Approved', 'True', 'Approved', `approved by ${counted.join(', ')}`);
    if (status.phase !== 'Approved')
      event('Normal', 'RestoreApproved', `approved by ${counted.join(', ')}; restoring ${what}`);
    status.phase = 'Approved';
  }

  const repositoryName = repository.metadata.name ?? '';
  const name = restoreJobName(request);
  decision.createJobs.push(
    restoreJob({
      request,
      backup,
      policy,
      repository,
      snapshot,
      target,
      script: chosen.script,
      liveSources: liveSourceCandidates(request, target, observed.policies.values()),
      name,
      settings: observed.settings,
    }),
  );
  status.phase = 'Running';
  status.jobName = name;
  status.repository = repositoryName;
  status.startTime = now.toISOString();
  if (backup && policy) status.expected = expectedCounts(backup, policy, request.spec.target.database);
  condition('Succeeded', 'Unknown', 'JobCreated', `Job ${name} is restoring from ${repositoryName}`);
  event(
    'Normal',
    'RestoreStarted',
    `restoring ${what} from ${repositoryName} into ${describeTarget(target)} (Job ${name})`,
  );
  decision.requeueAfterMs = requeueFor(observed, policy, status);
  return decision;
}

/** The identity a Backup's snapshot records as its source (TIDEMARK_SOURCE_NAME). */
export const sourceIdentity = (backup: Backup) =>
  `${backup.metadata.namespace}/${backup.spec.policy}/${backup.spec.source}`;

/**
 * What to restore, resolved once: approvers approve a fixed Backup, not whatever is newest when they
 * click. A Backup (by name, or the newest of policy + source) is read from the repository that holds
 * it; a request straight from a repository names a snapshot id, or a source identity the agent
 * resolves from the repository's catalog.
 */
function resolveWhat(
  observed: RestoreObserved,
): Resolution<{ backup?: Backup; repository: BackupRepository; snapshot: SnapshotChoice }> {
  const { request, now } = observed;
  const status = request.status ?? {};
  const from = request.spec.from;
  const createdAt = new Date(request.metadata.creationTimestamp ?? now);
  if (from.repository) {
    const namespace = request.metadata.namespace ?? '';
    if (from.sourceName && !from.sourceName.startsWith(`${namespace}/`))
      return {
        failure: {
          reason: 'InvalidSource',
          message: `sourceName ${from.sourceName} is not of namespace ${namespace} (<namespace>/<policy>/<source>): a namespace restores only its own snapshots`,
        },
      };
    const found = resolveRepository(from.repository, observed.repositories, createdAt, now);
    if (!('repository' in found)) return found;
    const snapshot: SnapshotChoice = from.snapshot
      ? { id: from.snapshot }
      : { source: from.sourceName ?? '', ...(from.before ? { before: from.before } : {}) };
    return { repository: found.repository, snapshot };
  }
  // Once pinned (status.backupName: seen while waiting, or resolved), that Backup and no other.
  const pinned = status.backupName;
  if (pinned && !observed.backups.some((b) => b.metadata.name === pinned))
    return {
      failure: { reason: 'BackupNotFound', message: `Backup ${pinned} was deleted before the restore started` },
    };
  const resolved = resolveBackup(pinned ? { backupName: pinned } : from, observed.backups, createdAt, now);
  if (!('backup' in resolved)) return resolved;
  const { backup } = resolved;
  // The primary, unless its retention already forgot this snapshot (a replica that keeps it then serves).
  const held = backup.status?.repositories?.filter((r) => r.state === 'Succeeded') ?? [];
  const primary = held.find((r) => r.role === 'primary') ?? held[0];
  const repositoryName = primary?.repository ?? observed.policies.get(backup.spec.policy)?.spec.repository;
  const repository = repositoryName ? observed.repositories.get(repositoryName) : undefined;
  if (!repository)
    return {
      failure: {
        reason: 'RepositoryNotFound',
        message: `BackupRepository ${repositoryName ?? '(unknown: no policy and no repository recorded)'} of Backup ${backup.metadata.name} does not exist`,
      },
    };
  return { backup, repository, snapshot: { id: primary?.snapshotId ?? backup.status?.snapshotId ?? '' } };
}

function describeSnapshot(backup: Backup | undefined, repository: BackupRepository, snapshot: SnapshotChoice): string {
  if (backup) return `Backup ${backup.metadata.name} (snapshot ${'id' in snapshot ? snapshot.id.slice(0, 12) : ''})`;
  const where = `repository ${repository.metadata.name}`;
  if ('id' in snapshot) return `snapshot ${snapshot.id} in ${where}`;
  return `the latest snapshot of ${snapshot.source}${snapshot.before ? ` taken before ${snapshot.before}` : ''} in ${where} (the agent resolves it)`;
}

function decideRunning(
  observed: RestoreObserved,
  status: RestoreRequestStatus,
  decision: RestoreDecision,
  condition: (type: string, value: Condition['status'], reason: string, message: string) => void,
  fail: (reason: string, message: string) => RestoreDecision,
): RestoreDecision {
  const { request, now } = observed;
  const jobName = status.jobName ?? '';
  const job = observed.jobs.get(jobName) as JobObserved<'restore'> | undefined;
  const backup = observed.backups.find((b) => b.metadata.name === status.backupName);
  const policy = backup ? observed.policies.get(backup.spec.policy) : undefined;
  const rejection = observed.rejected?.get(jobName);
  if (!job && rejection) return fail('JobRejected', `could not create the restore Job ${jobName}: ${rejection}`);
  if (!job)
    return fail(
      'JobLost',
      `the restore Job ${jobName} disappeared before it finished (deleted, or lost while the operator was down)`,
    );
  const outcome = jobOutcome(job.job);
  if (!outcome) {
    condition('Succeeded', 'Unknown', 'JobRunning', `Job ${jobName} is restoring from ${status.repository}`);
    const objective = rtoObjectiveMs(policy);
    const start = rtoStart(request, status);
    if (objective !== undefined && start && now.getTime() - start.getTime() > objective)
      condition(
        'RTOMet',
        'False',
        'RTOExceeded',
        `still running after ${formatDuration(now.getTime() - start.getTime())}, objective ${policy?.spec.objectives?.rto}`,
      );
    decision.requeueAfterMs = requeueFor(observed, policy, status);
    return decision;
  }
  const result = job.result;
  if (outcome === 'Complete' && result?.ok) {
    const completion = job.job.status?.completionTime ? new Date(job.job.status.completionTime) : now;
    status.phase = 'Succeeded';
    status.completionTime = completion.toISOString();
    status.restored = result.objects ?? [];
    if (result.snapshotId) status.snapshotId = result.snapshotId;
    if (result.snapshotSource) status.snapshotSource = result.snapshotSource;
    if (result.snapshotTime) status.snapshotTime = result.snapshotTime;
    delete status.error;
    const start = rtoStart(request, status);
    const rtoMs = start ? Math.max(0, completion.getTime() - start.getTime()) : 0;
    status.rtoSeconds = Math.round(rtoMs / 1000);
    status.achievedRTO = formatDuration(status.rtoSeconds * 1000);
    const restored = (status.restored ?? []).reduce((n, o) => n + o.records, 0);
    const expected = (status.expected ?? []).reduce((n, o) => n + o.records, 0);
    const compared = status.expected ? ` (backup: ${expected})` : '';
    const snapshot = status.backupName
      ? ''
      : ` (snapshot ${status.snapshotId?.slice(0, 12)} of ${status.snapshotSource})`;
    const message = `restored ${restored} records in ${status.restored.length} objects${compared} from ${status.repository}${snapshot} in ${status.achievedRTO}`;
    // Counts that differ from the backup's, cleanups the agent could not do: the restore stands, but says so.
    const warnings = result.warnings?.length ? `; warnings: ${result.warnings.join('; ')}` : '';
    condition('Succeeded', 'True', 'Completed', `${message}${warnings}`);
    if (warnings)
      decision.events.push({ type: 'Warning', reason: 'RestoreWarnings', message: result.warnings?.join('; ') ?? '' });
    const objective = rtoObjectiveMs(policy);
    if (objective !== undefined) {
      const met = status.rtoSeconds * 1000 <= objective;
      condition(
        'RTOMet',
        met ? 'True' : 'False',
        met ? 'WithinObjective' : 'RTOExceeded',
        `restored in ${status.achievedRTO}, objective ${policy?.spec.objectives?.rto}`,
      );
    }
    decision.events.push({ type: 'Normal', reason: 'RestoreSucceeded', message });
    return decision;
  }
  const error = result?.error;
  const why = error?.message ?? (result?.ok === false ? 'the agent reported a failure' : jobFailure(job.job));
  const firstAttempt = jobName === restoreJobName(request);
  if (firstAttempt && error && FALLBACK_CODES.has(error.code)) {
    const replica = backup?.status?.repositories?.find(
      (r) =>
        r.role === 'replica' &&
        r.state === 'Succeeded' &&
        r.repository !== status.repository &&
        observed.repositories.has(r.repository),
    );
    const target = backup && policy ? resolveTarget(request, backup, policy) : undefined;
    const chosen = chooseScript(request, policy);
    if (replica && backup && target && 'target' in target && !('reason' in chosen)) {
      const name = restoreJobName(request, replica.repository);
      decision.createJobs.push(
        restoreJob({
          request,
          backup,
          policy,
          repository: observed.repositories.get(replica.repository) as BackupRepository,
          snapshot: { id: replica.snapshotId ?? backup.status?.snapshotId ?? '' },
          target: target.target,
          script: chosen.script,
          liveSources: liveSourceCandidates(request, target.target, observed.policies.values()),
          name,
          settings: observed.settings,
        }),
      );
      const message = `restore from ${status.repository} failed (${error.code}: ${why}); retrying from replica ${replica.repository} (Job ${name})`;
      status.jobName = name;
      status.repository = replica.repository;
      condition('Succeeded', 'Unknown', 'FellBackToReplica', message);
      decision.events.push({ type: 'Warning', reason: 'RestoreFellBackToReplica', message });
      decision.requeueAfterMs = requeueFor(observed, policy, status);
      return decision;
    }
    return fail(
      'JobFailed',
      `restore from ${status.repository} failed (${error.code}: ${why}) and no replica holds Backup ${status.backupName}`,
    );
  }
  return fail('JobFailed', `restore from ${status.repository} failed: ${why}`);
}

function rtoObjectiveMs(policy: BackupPolicy | undefined): number | undefined {
  const rto = policy?.spec.objectives?.rto;
  if (!rto) return undefined;
  try {
    return parseDuration(rto);
  } catch {
    return undefined;
  }
}

/** Look again in a minute while running, or when the RTO objective runs out if that is sooner. */
function requeueFor(observed: RestoreObserved, policy: BackupPolicy | undefined, status: RestoreRequestStatus): number {
  const objective = rtoObjectiveMs(policy);
  const start = rtoStart(observed.request, status);
  const minute = 60_000;
  if (objective === undefined || !start) return minute;
  const left = start.getTime() + objective - observed.now.getTime();
  return left > 0 ? Math.min(minute, left + 1000) : minute;
}

function describeTarget(target: RestoreTarget): string {
  return target.kind === 'volume' ? `PVC ${target.claimName}` : `${target.engine} database ${target.database}`;
}

function jobFailure(job: k8s.V1Job): string {
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed');
  return `Job ${job.metadata?.name} failed: ${failed?.reason ?? 'Failed'}${failed?.message ? `: ${failed.message}` : ''}`;
}
