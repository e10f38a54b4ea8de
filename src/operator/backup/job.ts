import type * as k8s from '@kubernetes/client-node';
import { backup as backupTask } from '../../agent/tasks/backup.ts';
import { forget as forgetTask } from '../../agent/tasks/forget.ts';
import { replicate as replicateTask } from '../../agent/tasks/replicate.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { sourceAccess } from '../jobs/access.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { ownedJobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';

export const backupJobName = (backup: Backup) => ownedJobName(backup, backup.metadata.name ?? '');
/** One Job per copy attempt (attempt 1 keeps the plain name). */
export const replicaJobName = (backup: Backup, repository: string, attempt = 1) =>
  ownedJobName(backup, `${backup.metadata.name}-to-${repository}${attempt > 1 ? `-${attempt}` : ''}`);
export const forgetJobName = (backup: Backup, repository: string) =>
  ownedJobName(backup, `${backup.metadata.name}-forget-${repository}`);

/** The Job that runs one Backup. */
export function backupJob(
  backup: Backup,
  policy: BackupPolicy,
  repository: BackupRepository,
  claims: string[],
  settings: AgentSettings,
  readFrom?: Map<string, string>,
): k8s.V1Job {
  const source = policy.spec.sources.find((s) => s.name === backup.spec.source);
  if (!source) throw new Error(`policy ${policy.metadata.name} has no source ${backup.spec.source}`);
  const repo = repositoryAccess(repository, 'primary');
  const src = sourceAccess(source, claims, readFrom, policy.spec.verification?.audit?.timestampColumns);
  return agentJob({
    backup,
    policy,
    task: backupTask.name,
    name: backupJobName(backup),
    settings,
    env: [
      ...(src.env ?? []),
      ...repo.env,
      ...backupTask.jobEnv({
        type: backup.spec.type ?? 'full',
        sourceName: `${backup.metadata.namespace}/${backup.spec.policy}/${backup.spec.source}`,
      }),
    ],
    envFrom: repo.envFrom,
    volumes: [...src.volumes, ...repo.volumes],
    volumeMounts: [...src.volumeMounts, ...repo.volumeMounts],
  });
}

/** The Job that copies a Backup's snapshot to one replica. */
export function replicateJob(
  backup: Backup,
  policy: BackupPolicy,
  primary: BackupRepository,
  replica: BackupRepository,
  snapshotId: string,
  settings: AgentSettings,
  attempt = 1,
): k8s.V1Job {
  const from = repositoryAccess(primary, 'primary');
  const to = repositoryAccess(replica, 'replica');
  return agentJob({
    backup,
    policy,
    task: replicateTask.name,
    name: replicaJobName(backup, replica.metadata.name ?? '', attempt),
    settings,
    env: [...from.env, ...to.env, ...replicateTask.jobEnv({ snapshotId })],
    envFrom: [...from.envFrom, ...to.envFrom],
    volumes: [...from.volumes, ...to.volumes],
    volumeMounts: [...from.volumeMounts, ...to.volumeMounts],
  });
}

/** The Job that removes a deleted Backup's snapshot from one repository (and prunes what it freed). */
export function forgetJob(
  backup: Backup,
  policy: BackupPolicy | undefined,
  repository: BackupRepository,
  snapshotId: string,
  name: string,
  settings: AgentSettings,
): k8s.V1Job {
  const access = repositoryAccess(repository, 'primary');
  const job = agentJob({
    backup,
    policy,
    task: forgetTask.name,
    name,
    settings,
    env: [...access.env, ...forgetTask.jobEnv({ snapshotId })],
    envFrom: access.envFrom,
    volumes: access.volumes,
    volumeMounts: access.volumeMounts,
  });
  // The Backup is being deleted: the Job must not be garbage-collected with it before it ran (the
  // owner annotations still tie it to this Backup instance).
  delete job.metadata?.ownerReferences;
  return job;
}
