import type * as k8s from '@kubernetes/client-node';
import type { PostRestoreScript } from '../../api/backuppolicy.ts';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import { type AgentSettings, agentJob, DATA_MOUNT, LABELS, ownedJobName } from '../backup/job.ts';
import { repositoryAccess } from '../backup/repository-env.ts';
import { labelValue } from '../runtime/labels.ts';

/** Label on a restore Job naming its RestoreRequest (how the controller finds its Jobs). */
export const RESTORE_LABEL = 'tidemark.dev/restore';

/** Where a restore writes: a database on a server (credentials from its connection Secret), or a PVC. */
export type RestoreTarget =
  | { kind: 'database'; engine: 'postgres' | 'mysql'; connectionSecret: string; database: string }
  | { kind: 'volume'; claimName: string };

/** Which snapshot the agent restores: an id (or unique prefix), or the newest of a source identity (before a time). */
export type SnapshotChoice = { id: string } | { source: string; before?: string };

/** The first attempt reads from the Backup's primary repository; a fallback from one replica. */
export const restoreJobName = (request: RestoreRequest, fallbackRepository?: string) =>
  ownedJobName(
    request,
    fallbackRepository
      ? `${request.metadata.name}-restore-from-${fallbackRepository}`
      : `${request.metadata.name}-restore`,
  );

/** What the agent needs to write into the target: its URL (password-free) and credentials, or the PVC read-write. */
export function targetAccess(target: RestoreTarget): {
  env: k8s.V1EnvVar[];
  volumes: k8s.V1Volume[];
  volumeMounts: k8s.V1VolumeMount[];
} {
  if (target.kind === 'volume')
    return {
      env: [{ name: 'TIDEMARK_TARGET', value: `file://${DATA_MOUNT}` }],
      volumes: [{ name: 'target', persistentVolumeClaim: { claimName: target.claimName } }],
      volumeMounts: [{ name: 'target', mountPath: DATA_MOUNT }],
    };
  const fromSecret = (name: string, key: string): k8s.V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: target.connectionSecret, key } },
  });
  const scheme = target.engine === 'postgres' ? 'postgresql' : 'mysql';
  return {
    env: [
      fromSecret('TIDEMARK_DB_HOST', 'host'),
      fromSecret('TIDEMARK_DB_PORT', 'port'),
      fromSecret('TIDEMARK_DB_USER', 'username'),
      fromSecret(target.engine === 'postgres' ? 'PGPASSWORD' : 'MYSQL_PWD', 'password'),
      {
        name: 'TIDEMARK_TARGET',
        value: `${scheme}://$(TIDEMARK_DB_USER)@$(TIDEMARK_DB_HOST):$(TIDEMARK_DB_PORT)/${encodeURIComponent(target.database)}`,
      },
    ],
    volumes: [],
    volumeMounts: [],
  };
}

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
  name: string;
  settings: AgentSettings;
}): k8s.V1Job {
  const { request, backup, snapshot } = options;
  const repo = repositoryAccess(options.repository, 'primary');
  const target = targetAccess(options.target);
  const spec = request.spec;
  const job = agentJob({
    policy: options.policy,
    task: 'restore',
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
      // Straight from a repository (no Backup vouches for the snapshot): only this namespace's.
      ...(backup ? [] : [{ name: 'TIDEMARK_SNAPSHOT_SCOPE', value: `${request.metadata.namespace}/` }]),
      ...('id' in snapshot
        ? [{ name: 'TIDEMARK_SNAPSHOT', value: snapshot.id }]
        : [
            { name: 'TIDEMARK_SNAPSHOT_SOURCE', value: snapshot.source },
            ...(snapshot.before ? [{ name: 'TIDEMARK_SNAPSHOT_BEFORE', value: snapshot.before }] : []),
          ]),
      { name: 'TIDEMARK_RESTORE_MODE', value: spec.mode === 'replace' ? 'replace' : 'new' },
      ...(spec.target.database ? [{ name: 'TIDEMARK_DATABASE', value: spec.target.database }] : []),
      ...(spec.target.createMissingRoles ? [{ name: 'TIDEMARK_CREATE_MISSING_ROLES', value: 'true' }] : []),
      ...scriptEnv(options.script),
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

/**
 * The policy's post-restore script and, unless the policy opted into the restore user, the role it
 * runs as: the username and password of its own connection Secret (the agent connects as that role).
 */
export function scriptEnv(script: PostRestoreScript | undefined): k8s.V1EnvVar[] {
  if (!script) return [];
  const secret = script.runAs?.connectionSecret.name;
  const fromSecret = (name: string, key: string): k8s.V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: secret ?? '', key } },
  });
  return [
    { name: 'TIDEMARK_POST_RESTORE_SQL', value: script.sql },
    ...(secret
      ? [fromSecret('TIDEMARK_SCRIPT_USER', 'username'), fromSecret('TIDEMARK_SCRIPT_PASSWORD', 'password')]
      : []),
  ];
}
