import type * as k8s from '@kubernetes/client-node';
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

/** `role` names the variables: the primary uses TIDEMARK_REPO*, a replica TIDEMARK_REPLICA_* and prefixed credentials. */
export function repositoryAccess(repository: BackupRepository, role: 'primary' | 'replica'): RepositoryAccess {
  const spec = repository.spec;
  const names =
    role === 'primary'
      ? { url: 'TIDEMARK_REPO', key: 'TIDEMARK_REPO_KEY', prefix: '' }
      : { url: 'TIDEMARK_REPLICA_REPO', key: 'TIDEMARK_REPLICA_KEY', prefix: 'REPLICA_' };
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
    access.env.push({ name: 'TIDEMARK_REPO_IMMUTABILITY', value: spec.immutability.period });
  if (spec.provider === 'filesystem' && spec.filesystem?.claimName) {
    const volume = `${role}-repository`;
    access.volumes.push({ name: volume, persistentVolumeClaim: { claimName: spec.filesystem.claimName } });
    access.volumeMounts.push({ name: volume, mountPath: spec.filesystem.path });
  }
  return access;
}
