import type * as k8s from '@kubernetes/client-node';
import { DEFAULT_EXPORT_EXPIRY } from '../../api/backupexport.ts';
import { parseDuration } from '../../api/duration.ts';
import type { Backup, BackupExport, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { formatBytes } from '../../units.ts';
import type { AgentSettings } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { setCondition } from '../runtime/conditions.ts';
import { controllerReference } from '../runtime/owner.ts';
import { exportJob, exportJobName, exportObjectKey, exportSecretName } from './job.ts';

/** Keeps an export until its ZIP is deleted. */
export const EXPORT_FINALIZER = 'tidemark.dev/export-cleanup';

type Status = NonNullable<BackupExport['status']>;

export interface ExportObserved {
  exp: BackupExport;
  backup: Backup | undefined;
  policy: BackupPolicy | undefined;
  /** The namespace's repositories, by name. */
  repositories: Map<string, BackupRepository>;
  /** The export's Jobs, by name, with each ended Job's result. */
  jobs: Map<string, JobObserved<'export'>>;
  settings: AgentSettings;
  now: Date;
}

export interface ExportEvent {
  type: 'Normal' | 'Warning';
  reason: 'ExportStarted' | 'ExportReady' | 'ExportFailed' | 'ExportExpired' | 'ExportWaiting';
  message: string;
}

export interface ExportDecision {
  status?: Status;
  createJobs: k8s.V1Job[];
  events: ExportEvent[];
  finalizer?: 'add' | 'remove';
  requeueAfterMs?: number;
}

/**
 * The BackupExport controller's decision, pure: wait for a succeeded Backup, run the export Job, record
 * where the ZIP is and when its link expires, delete the ZIP once expired (phase Expired), and on
 * deletion delete it before letting the export go (finalizer). The link itself is never seen here.
 */
export function decideExport(observed: ExportObserved): ExportDecision {
  const { exp, now } = observed;
  const status: Status = exp.status ?? {};
  const finalizers = exp.metadata.finalizers ?? [];
  if (exp.metadata.deletionTimestamp) return decideDeletion(observed, finalizers.includes(EXPORT_FINALIZER));
  if (!finalizers.includes(EXPORT_FINALIZER) && status.phase !== 'Expired' && status.phase !== 'Failed')
    return { createJobs: [], events: [], finalizer: 'add' };
  switch (status.phase) {
    case undefined:
    case 'Pending':
      return start(observed, status);
    case 'Running':
      return running(observed, status);
    case 'Ready': {
      const expiry = Date.parse(status.expiryTime ?? '');
      if (now.getTime() < expiry) return { createJobs: [], events: [], requeueAfterMs: expiry - now.getTime() };
      return deleteObject(observed, status, 'Expired');
    }
    default:
      return { createJobs: [], events: [] };
  }
}

function start(observed: ExportObserved, status: Status): ExportDecision {
  const { exp, backup, policy, now } = observed;
  const waiting = (reason: string, message: string): ExportDecision => {
    const next = withCondition(observed, { ...status, phase: 'Pending' }, 'False', reason, message);
    const changed = status.phase !== 'Pending' || status.conditions?.find((c) => c.type === 'Ready')?.reason !== reason;
    return {
      status: next,
      createJobs: [],
      events: changed ? [{ type: 'Normal', reason: 'ExportWaiting', message }] : [],
    };
  };
  const fail = (reason: string, message: string): ExportDecision => failed(observed, status, reason, message);
  if (!backup) return waiting('BackupNotFound', `Backup ${exp.spec.backup} does not exist (yet)`);
  if (backup.status?.phase === 'Failed')
    return fail('BackupFailed', `Backup ${exp.spec.backup} failed: nothing to export`);
  const snapshotId = backup.status?.snapshotId;
  if (backup.status?.phase !== 'Succeeded' || !snapshotId)
    return waiting('BackupNotReady', `Backup ${exp.spec.backup} has not succeeded yet`);
  const source = policy?.spec.sources.find((s) => s.name === backup.spec.source);
  if (!policy || !source)
    return fail(
      'PolicyNotFound',
      `the policy ${backup.spec.policy} of Backup ${exp.spec.backup} or its source is gone`,
    );
  const repositoryName = primaryRepository(backup, policy);
  const repository = observed.repositories.get(repositoryName);
  if (!repository) return waiting('RepositoryNotFound', `BackupRepository ${repositoryName} does not exist`);
  const expiresAfter = exp.spec.expiresAfter ?? DEFAULT_EXPORT_EXPIRY;
  if (repository.spec.provider === 's3' && parseDuration(expiresAfter) > 7 * 24 * 3600_000)
    return fail('ExpiryTooLong', `expiresAfter ${expiresAfter}: an S3 presigned link lasts at most 7d`);
  const job = exportJob({
    exp,
    policy,
    repository,
    settings: observed.settings,
    input: {
      action: 'write',
      snapshotId,
      kind: source.volume ? 'volume' : 'database',
      key: exportObjectKey(exp),
      expiresAfter,
      secretName: exportSecretName(exp),
      namespace: exp.metadata.namespace ?? '',
      owner: controllerReference(exp),
    },
  });
  const next: Status = {
    ...status,
    phase: 'Running',
    jobName: job.metadata?.name ?? '',
    startTime: now.toISOString(),
    objectKey: exportObjectKey(exp),
    repository: repositoryName,
  };
  return {
    status: withCondition(observed, next, 'False', 'Running', `exporting Backup ${exp.spec.backup}`),
    createJobs: [job],
    events: [
      {
        type: 'Normal',
        reason: 'ExportStarted',
        message: `exporting Backup ${exp.spec.backup} (snapshot ${snapshotId.slice(0, 12)}) to ${repositoryName}`,
      },
    ],
  };
}

function running(observed: ExportObserved, status: Status): ExportDecision {
  const entry = observed.jobs.get(status.jobName ?? '');
  if (!entry) return { createJobs: [], events: [] }; // the informer has not seen it yet
  const outcome = jobOutcome(entry.job);
  if (!outcome) return { createJobs: [], events: [] };
  const result = entry.result;
  if (outcome === 'Failed' || !result?.ok || !result.export) {
    const message = result?.error?.message ?? `Job ${status.jobName} failed without a result`;
    return failed(observed, status, result?.error?.code ?? 'JobFailed', message);
  }
  const written = result.export;
  const next: Status = {
    ...status,
    phase: 'Ready',
    completionTime: observed.now.toISOString(),
    expiryTime: written.expiryTime,
    location: written.location,
    sizeBytes: written.sizeBytes,
    size: formatBytes(written.sizeBytes),
    objects: result.objects ?? [],
    ...(written.linked ? { secretName: exportSecretName(observed.exp) } : {}),
  };
  const where = written.linked
    ? `the link is in Secret ${exportSecretName(observed.exp)} until ${written.expiryTime}`
    : `no link for a filesystem repository: the ZIP is ${written.location} in the repository volume, until ${written.expiryTime}`;
  return {
    status: withCondition(observed, next, 'True', 'Ready', where),
    createJobs: [],
    events: [
      {
        type: 'Normal',
        reason: 'ExportReady',
        message: `exported Backup ${observed.exp.spec.backup} (${next.size}): ${where}`,
      },
    ],
    requeueAfterMs: Math.max(0, Date.parse(written.expiryTime) - observed.now.getTime()),
  };
}

function failed(observed: ExportObserved, status: Status, reason: string, message: string): ExportDecision {
  const next: Status = { ...status, phase: 'Failed', error: message };
  return {
    status: withCondition(observed, next, 'False', reason, message),
    createJobs: [],
    events: [
      {
        type: 'Warning',
        reason: 'ExportFailed',
        message: `export of Backup ${observed.exp.spec.backup} failed: ${message}`,
      },
    ],
    // A failed export keeps no ZIP (the agent deletes a partial one): nothing for a finalizer to do.
    finalizer: 'remove',
  };
}

/** Runs the delete Job for the ZIP; once it succeeded, `then` (Expired) or the finalizer goes. */
function deleteObject(observed: ExportObserved, status: Status, then: 'Expired' | 'Deleted'): ExportDecision {
  const { exp, policy } = observed;
  const name = exportJobName(exp, 'delete');
  const entry = observed.jobs.get(name);
  const outcome = entry && jobOutcome(entry.job);
  if (outcome === 'Complete' && entry?.result?.ok) {
    if (then === 'Deleted') return { createJobs: [], events: [], finalizer: 'remove' };
    const next: Status = { ...status, phase: 'Expired', jobName: name };
    const message = `the link expired at ${status.expiryTime}; the ZIP was deleted`;
    return {
      status: withCondition(observed, next, 'False', 'Expired', message),
      createJobs: [],
      events: [{ type: 'Normal', reason: 'ExportExpired', message }],
      finalizer: 'remove',
    };
  }
  const repository = observed.repositories.get(status.repository ?? '');
  if (outcome === 'Failed' || !repository) {
    // Nothing more can be done from here: say so, and let go (the object may be deleted by hand).
    const message = `the ZIP ${status.location ?? status.objectKey} could not be deleted: ${entry?.result?.error?.message ?? 'its repository is gone'}`;
    return {
      createJobs: [],
      events: [{ type: 'Warning', reason: 'ExportFailed', message }],
      finalizer: 'remove',
      ...(then === 'Expired'
        ? {
            status: withCondition(
              observed,
              { ...status, phase: 'Expired', error: message },
              'False',
              'Expired',
              message,
            ),
          }
        : {}),
    };
  }
  if (entry) return { createJobs: [], events: [] };
  const job = exportJob({
    exp,
    policy,
    repository,
    settings: observed.settings,
    input: { action: 'delete', key: status.objectKey ?? exportObjectKey(exp) },
  });
  return { createJobs: [job], events: [] };
}

function decideDeletion(observed: ExportObserved, holding: boolean): ExportDecision {
  const status = observed.exp.status ?? {};
  if (!holding) return { createJobs: [], events: [] };
  // A ZIP may exist once a Job started writing it and until it was deleted.
  if (!status.objectKey || status.phase === 'Expired' || status.phase === 'Failed')
    return { createJobs: [], events: [], finalizer: 'remove' };
  const running = status.phase === 'Running' && observed.jobs.get(status.jobName ?? '');
  if (running && !jobOutcome(running.job)) return { createJobs: [], events: [] }; // wait for the writer to end
  return deleteObject(observed, status, 'Deleted');
}

function primaryRepository(backup: Backup, policy: BackupPolicy): string {
  return backup.status?.repositories?.find((r) => r.role === 'primary')?.repository ?? policy.spec.repository;
}

function withCondition(
  observed: ExportObserved,
  status: Status,
  value: 'True' | 'False',
  reason: string,
  message: string,
): Status {
  return {
    ...status,
    conditions: setCondition(
      status.conditions,
      { type: 'Ready', status: value, reason, message },
      observed.exp.metadata.generation,
      observed.now,
    ),
  };
}
