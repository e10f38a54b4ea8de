import type * as k8s from '@kubernetes/client-node';
import { restore as restoreTask } from '../../agent/tasks/restore.ts';
import type { SnapshotChoice } from '../../agent/tasks/snapshot.ts';
import type { PostRestoreScript } from '../../api/backuppolicy.ts';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import { type LiveSourceCandidate, liveSourceEnv, type RestoreTarget, targetAccess } from '../jobs/access.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { LABELS } from '../jobs/labels.ts';
import { ownedJobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';
import { labelValue } from '../runtime/labels.ts';

/** Label on a restore Job naming its RestoreRequest (how the controller finds its Jobs). */
export const RESTORE_LABEL = 'tidemark.dev/restore';

/** The first attempt reads from the Backup's primary repository; a fallback from one replica. */
export const restoreJobName = (request: RestoreRequest, fallbackRepository?: string) =>
  ownedJobName(
    request,
    fallbackRepository
      ? `${request.metadata.name}-restore-from-${fallbackRepository}`
      : `${request.metadata.name}-restore`,
  );

/**
 * The Job that restores one snapshot (of `backup`, or chosen straight from `repository`) into
 * `target`, owned by the RestoreRequest. It runs the agent's `restore` task once (backoffLimit 0,
 * disruptions not counted): a failed restore is the operator's to retry (from a replica), and
 * retrying a deterministic failure such as a non-empty target only delays the answer. The
 * post-restore script (the policy's, never the request's) travels in an env var, never in argv, with
 * the credentials of the role it runs as. Pure: same inputs, same Job.
 */
export function restoreJob(options: {
  request: RestoreRequest;
  backup: Backup | undefined;
  policy: BackupPolicy | undefined;
  repository: BackupRepository;
  snapshot: SnapshotChoice;
  target: RestoreTarget;
  script?: PostRestoreScript | undefined;
  /** Sources the target may be under another Secret; the agent refuses to write over one. */
  liveSources?: LiveSourceCandidate[];
  name: string;
  settings: AgentSettings;
}): k8s.V1Job {
  const { request, backup, snapshot } = options;
  const repo = repositoryAccess(options.repository, 'primary');
  const target = targetAccess(options.target);
  const spec = request.spec;
  const job = agentJob({
    policy: options.policy,
    task: restoreTask.name,
    name: options.name,
    settings: options.settings,
    owner: request,
    labels: {
      [RESTORE_LABEL]: labelValue(request.metadata.name ?? ''),
      ...(backup
        ? { [LABELS.policy]: labelValue(backup.spec.policy), [LABELS.source]: labelValue(backup.spec.source) }
        : {}),
    },
    env: [
      ...target.env,
      ...repo.env,
      ...restoreTask.jobEnv({
        snapshot: {
          choice: snapshot,
          // Straight from a repository (no Backup vouches for the snapshot): only this namespace's.
          ...(backup ? {} : { scope: `${request.metadata.namespace}/` }),
        },
        mode: spec.mode === 'replace' ? 'replace' : 'new',
        database: spec.target.database,
        createMissingRoles: spec.target.createMissingRoles,
        script: options.script,
      }),
      ...liveSourceEnv(options.liveSources ?? []),
    ],
    envFrom: repo.envFrom,
    volumes: [...target.volumes, ...repo.volumes],
    volumeMounts: [...target.volumeMounts, ...repo.volumeMounts],
  });
  if (job.spec) {
    job.spec.backoffLimit = 0;
    job.spec.podFailurePolicy = {
      rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }],
    };
  }
  return job;
}
