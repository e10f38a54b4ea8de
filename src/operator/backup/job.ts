import type * as k8s from '@kubernetes/client-node';
import type { AgentTask } from '../../agent/tasks.ts';
import type { Source } from '../../api/backuppolicy.ts';
import type { DatabaseTls } from '../../api/common.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { CONNECTION_ENV } from '../../sources/connection.ts';
import { jobName } from '../backuppolicy/schedule.ts';
import { labelValue } from '../runtime/labels.ts';
import { objectLogFields } from '../runtime/log-fields.ts';
import { controllerReference, type Owner } from '../runtime/owner.ts';
import { repositoryAccess } from './repository-env.ts';

export interface AgentSettings {
  image: string;
  serviceAccountName: string;
  /**
   * How long an agent pod may wait unable to start (missing Secret or key, image not pullable) before
   * its Job is failed and deleted (`--pod-start-timeout`); default POD_START_TIMEOUT_MS.
   */
  podStartTimeoutMs?: number;
  /** TIDEMARK_RETRY_BUDGET of every agent (`--storage-retry-budget`, a duration); unset: the agent's default. */
  retryBudget?: string;
}

export const POD_START_TIMEOUT_MS = 2 * 60_000;

/**
 * Every agent Job ends by this deadline unless the policy's jobTemplate.activeDeadlineSeconds says
 * otherwise: data-moving tasks get 6 hours, repository housekeeping 30 minutes.
 */
export const DEFAULT_DEADLINE_SECONDS: Record<AgentTask, number> = {
  backup: 6 * 3600,
  restore: 6 * 3600,
  replicate: 6 * 3600,
  forget: 30 * 60,
  probe: 30 * 60,
  catalog: 30 * 60,
  drill: 6 * 3600,
};

/**
 * Who an agent Job works for, as annotations: Jobs that outlive their object (forget Jobs have no
 * owner reference) are still found by the object's uid, and never by a later object of the same name.
 */
export const OWNER_ANNOTATIONS = {
  kind: 'tidemark.dev/owner-kind',
  name: 'tidemark.dev/owner-name',
  uid: 'tidemark.dev/owner-uid',
} as const;

/**
 * A Job name unique to one object instance: the base name and the head of the object's uid, so a
 * re-created object of the same name never collides with, or adopts, the Job of the one before.
 */
export function ownedJobName(owner: { metadata: { uid?: string } }, base: string): string {
  const uid = (owner.metadata.uid ?? '').replace(/-/g, '').slice(0, 8);
  return jobName(uid ? `${base}-${uid}` : base);
}

export const LABELS = {
  backup: 'tidemark.dev/backup',
  policy: 'tidemark.dev/policy',
  source: 'tidemark.dev/source',
  task: 'tidemark.dev/task',
} as const;

/** Where volume sources are mounted in the agent container (read-only). */
export const DATA_MOUNT = '/data';

/**
 * The Job of one agent task for a Backup: pod security "restricted", credentials only from Secrets
 * (secretKeyRef / envFrom), owned by the Backup so it goes with it. Pure: same inputs, same Job.
 */
export function agentJob(options: {
  /** The Backup the Job works for; absent for a repository probe (then `owner` and `labels` are given). */
  backup?: Backup;
  policy: BackupPolicy | undefined;
  task: AgentTask;
  name: string;
  /** For a Job run for another object (a RestoreRequest, a BackupRepository): its owner, and labels instead of the Backup's. */
  owner?: Owner;
  labels?: Record<string, string>;
  settings: AgentSettings;
  env: k8s.V1EnvVar[];
  envFrom: k8s.V1EnvFromSource[];
  volumes: k8s.V1Volume[];
  volumeMounts: k8s.V1VolumeMount[];
  /** Mount the ServiceAccount token: only for a task that calls the Kubernetes API (the catalog). */
  kubernetesApi?: boolean;
}): k8s.V1Job {
  const { backup, policy, settings } = options;
  const owner = options.owner ?? backup;
  if (!owner) throw new Error(`agent Job ${options.name} needs a Backup or an owner`);
  const template = policy?.spec.jobTemplate ?? {};
  const labels = {
    'app.kubernetes.io/name': 'tidemark-agent',
    'app.kubernetes.io/managed-by': 'tidemark',
    ...(options.labels ??
      (backup
        ? {
            [LABELS.backup]: labelValue(backup.metadata.name ?? ''),
            [LABELS.policy]: labelValue(backup.spec.policy),
            [LABELS.source]: labelValue(backup.spec.source),
          }
        : {})),
    [LABELS.task]: options.task,
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: options.name,
      namespace: owner.metadata.namespace ?? '',
      labels,
      annotations: {
        [OWNER_ANNOTATIONS.kind]: owner.kind,
        [OWNER_ANNOTATIONS.name]: owner.metadata.name ?? '',
        [OWNER_ANNOTATIONS.uid]: owner.metadata.uid ?? '',
      },
      ownerReferences: [controllerReference(owner)],
    },
    spec: {
      backoffLimit: template.backoffLimit ?? 2,
      activeDeadlineSeconds: template.activeDeadlineSeconds || DEFAULT_DEADLINE_SECONDS[options.task],
      ttlSecondsAfterFinished: 24 * 3600,
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: settings.serviceAccountName,
          automountServiceAccountToken: options.kubernetesApi === true,
          restartPolicy: 'Never',
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(template.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
          ...(template.tolerations ? { tolerations: template.tolerations as k8s.V1Toleration[] } : {}),
          containers: [
            {
              name: 'agent',
              image: settings.image,
              args: ['agent', options.task],
              env: [
                { name: 'TIDEMARK_RESULT_FILE', value: '/dev/termination-log' },
                // Every agent log line then names what it works for (src/log.ts), as operator lines do.
                {
                  name: 'TIDEMARK_LOG_FIELDS',
                  value: JSON.stringify({ ...objectLogFields(owner), ...(backup ? objectLogFields(backup) : {}) }),
                },
                ...(settings.retryBudget ? [{ name: 'TIDEMARK_RETRY_BUDGET', value: settings.retryBudget }] : []),
                ...options.env,
              ],
              envFrom: options.envFrom,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...options.volumeMounts],
              terminationMessagePolicy: 'FallbackToLogsOnError',
              ...(template.resources ? { resources: template.resources as k8s.V1ResourceRequirements } : {}),
              securityContext: {
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }, ...options.volumes],
        },
      },
    },
  };
}

/** Where the agent finds the database TLS files it is given (read-only Secret volumes). */
export const TLS_MOUNT = '/etc/tidemark/db-tls';

/**
 * What the agent needs to connect to a database server, from its connection Secret (host, port,
 * username, and password when the Secret has one: a server that authenticates by certificate needs
 * none) and its TLS Secrets, mounted as files: the operator never reads a Secret.
 */
export function databaseAccess(
  engine: 'postgres' | 'mysql',
  connectionSecret: string,
  tls: DatabaseTls | undefined,
): { env: k8s.V1EnvVar[]; volumes: k8s.V1Volume[]; volumeMounts: k8s.V1VolumeMount[] } {
  const fromSecret = (name: string, key: string, optional = false): k8s.V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: connectionSecret, key, ...(optional ? { optional } : {}) } },
  });
  const env = [
    fromSecret('TIDEMARK_DB_HOST', 'host'),
    fromSecret('TIDEMARK_DB_PORT', 'port'),
    fromSecret('TIDEMARK_DB_USER', 'username'),
    fromSecret(engine === 'postgres' ? 'PGPASSWORD' : 'MYSQL_PWD', 'password', true),
    ...(tls?.mode ? [{ name: CONNECTION_ENV.tlsMode, value: tls.mode }] : []),
  ];
  const volumes: k8s.V1Volume[] = [];
  const volumeMounts: k8s.V1VolumeMount[] = [];
  const mount = (name: string, secretName: string, items: k8s.V1KeyToPath[]) => {
    volumes.push({ name, secret: { secretName, items, defaultMode: 0o440 } });
    volumeMounts.push({ name, mountPath: `${TLS_MOUNT}/${name}`, readOnly: true });
  };
  if (tls?.caSecret) {
    mount('db-tls-ca', tls.caSecret.name, [{ key: tls.caSecret.key ?? 'ca.crt', path: 'ca.crt' }]);
    env.push({ name: CONNECTION_ENV.tlsCa, value: `${TLS_MOUNT}/db-tls-ca/ca.crt` });
  }
  if (tls?.clientCertificateSecret) {
    mount('db-tls-client', tls.clientCertificateSecret.name, [
      { key: 'tls.crt', path: 'tls.crt' },
      { key: 'tls.key', path: 'tls.key' },
    ]);
    env.push(
      { name: CONNECTION_ENV.tlsCert, value: `${TLS_MOUNT}/db-tls-client/tls.crt` },
      { name: CONNECTION_ENV.tlsKey, value: `${TLS_MOUNT}/db-tls-client/tls.key` },
    );
  }
  return { env, volumes, volumeMounts };
}

/** What the agent needs to reach one source: its URL (password-free) and credentials from the connection Secret. */
export function sourceAccess(
  source: Source,
  claims: string[],
  /** Claims read from a PVC restored from a VolumeSnapshot: claim → that PVC (mounted where the claim would be). */
  readFrom?: Map<string, string>,
): Pick<k8s.V1Container, 'env'> & { volumes: k8s.V1Volume[]; volumeMounts: k8s.V1VolumeMount[] } {
  const database = source.postgres ?? source.mysql;
  if (database) {
    const access = databaseAccess(source.postgres ? 'postgres' : 'mysql', database.connectionSecret.name, database.tls);
    const scheme = source.postgres ? 'postgresql' : 'mysql';
    const databases = database.allDatabases ? '' : (database.databases ?? []).map(encodeURIComponent).join(',');
    return {
      env: [
        ...access.env,
        {
          name: 'TIDEMARK_SOURCE',
          value: `${scheme}://$(TIDEMARK_DB_USER)@$(TIDEMARK_DB_HOST):$(TIDEMARK_DB_PORT)/${databases}`,
        },
        ...(database.allDatabases ? [{ name: 'TIDEMARK_ALL_DATABASES', value: 'true' }] : []),
        ...(database.lockWaitTimeout
          ? [{ name: CONNECTION_ENV.lockWaitTimeout, value: database.lockWaitTimeout }]
          : []),
      ],
      volumes: access.volumes,
      volumeMounts: access.volumeMounts,
    };
  }
  const single = claims.length === 1;
  return {
    env: [
      { name: 'TIDEMARK_SOURCE', value: `file://${DATA_MOUNT}` },
      ...(source.volume?.excludes?.length
        ? [{ name: 'TIDEMARK_EXCLUDES', value: JSON.stringify(source.volume.excludes) }]
        : []),
    ],
    volumes: claims.map((claim, i) => ({
      name: `source-${i}`,
      persistentVolumeClaim: { claimName: readFrom?.get(claim) ?? claim, readOnly: true },
    })),
    volumeMounts: claims.map((claim, i) => ({
      name: `source-${i}`,
      mountPath: single ? DATA_MOUNT : `${DATA_MOUNT}/${claim}`,
      readOnly: true,
    })),
  };
}

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
  const src = sourceAccess(source, claims, readFrom);
  return agentJob({
    backup,
    policy,
    task: 'backup',
    name: backupJobName(backup),
    settings,
    env: [
      ...(src.env ?? []),
      ...repo.env,
      { name: 'TIDEMARK_BACKUP_TYPE', value: backup.spec.type ?? 'full' },
      {
        name: 'TIDEMARK_SOURCE_NAME',
        value: `${backup.metadata.namespace}/${backup.spec.policy}/${backup.spec.source}`,
      },
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
    task: 'replicate',
    name: replicaJobName(backup, replica.metadata.name ?? '', attempt),
    settings,
    env: [...from.env, ...to.env, { name: 'TIDEMARK_SNAPSHOT', value: snapshotId }],
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
    task: 'forget',
    name,
    settings,
    env: [...access.env, { name: 'TIDEMARK_SNAPSHOT', value: snapshotId }],
    envFrom: access.envFrom,
    volumes: access.volumes,
    volumeMounts: access.volumeMounts,
  });
  // The Backup is being deleted: the Job must not be garbage-collected with it before it ran (the
  // owner annotations still tie it to this Backup instance).
  delete job.metadata?.ownerReferences;
  return job;
}
