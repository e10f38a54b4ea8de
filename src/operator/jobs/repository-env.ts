import type * as k8s from '@kubernetes/client-node';
import { REPLICA_ENV, REPOSITORY_ENV } from '../../agent/tasks/env.ts';
import type { BackupRepository } from '../../api/kinds.ts';

/**
 * How an agent container reaches a repository: its URL (no credentials in it), the passphrase from
 * the repository's encryption key Secret, provider credentials from its credentials Secret (envFrom,
 * optionally prefixed so a replica's S3 keys do not clash with the primary's), and for a filesystem
 * repository the volume holding it.
 */
export interface RepositoryAccess {
  env: k8s.V1EnvVar[];
  envFrom: k8s.V1EnvFromSource[];
  volumes: k8s.V1Volume[];
  volumeMounts: k8s.V1VolumeMount[];
}

export function repositoryUrl(repository: BackupRepository): string {
  const spec = repository.spec;
  const prefix = (spec.prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (spec.provider === 's3' && spec.s3) {
    const query = new URLSearchParams({ region: spec.region });
    if (spec.s3.endpoint) query.set('endpoint', spec.s3.endpoint);
    if (spec.s3.forcePathStyle) query.set('pathStyle', 'true');
    return `s3://${spec.s3.bucket}/${prefix}?${query}`;
  }
  if (spec.provider === 'azureBlob' && spec.azureBlob) {
    const query = spec.azureBlob.endpoint ? `?${new URLSearchParams({ endpoint: spec.azureBlob.endpoint })}` : '';
    return `azblob://${spec.azureBlob.container}/${prefix}${query}`;
  }
  return `file://${spec.filesystem?.path ?? '/repository'}${prefix ? `/${prefix}` : ''}`;
}

/** `role` names the variables: the primary's REPOSITORY_ENV, a replica's REPLICA_ENV and prefixed credentials. */
export function repositoryAccess(repository: BackupRepository, role: 'primary' | 'replica'): RepositoryAccess {
  const spec = repository.spec;
  const names =
    role === 'primary'
      ? { ...REPOSITORY_ENV, prefix: '' }
      : { url: REPLICA_ENV.url, key: REPLICA_ENV.key, prefix: REPLICA_ENV.credentialsPrefix };
  const access: RepositoryAccess = {
    env: [
      { name: names.url, value: repositoryUrl(repository) },
      {
        name: names.key,
        valueFrom: {
          secretKeyRef: { name: spec.encryptionKeySecret.name, key: spec.encryptionKeySecret.key ?? 'passphrase' },
        },
      },
    ],
    envFrom: spec.credentialsSecret
      ? [{ secretRef: { name: spec.credentialsSecret.name }, ...(names.prefix ? { prefix: names.prefix } : {}) }]
      : [],
    volumes: [],
    volumeMounts: [],
  };
  // The agent refuses to forget a snapshot inside this period, whichever path asked for it.
  if (role === 'primary' && spec.immutability)
    access.env.push({ name: REPOSITORY_ENV.immutability, value: spec.immutability.period });
  if (spec.provider === 'filesystem' && spec.filesystem?.claimName) {
    const volume = `${role}-repository`;
    access.volumes.push({ name: volume, persistentVolumeClaim: { claimName: spec.filesystem.claimName } });
    access.volumeMounts.push({ name: volume, mountPath: spec.filesystem.path });
  }
  return access;
}
