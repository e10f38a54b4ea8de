// Objects the decision tests share (not built into dist/: tsconfig.build.json leaves testing/ out).
import type { BackupRepository } from '../../api/kinds.ts';

/** An S3 BackupRepository named `name` in namespace `namespace`, its bucket named alike. */
export function s3Repository(name: string, namespace: string): BackupRepository {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupRepository',
    metadata: { name, namespace },
    spec: {
      provider: 's3',
      region: 'eu',
      s3: { bucket: name },
      encryptionKeySecret: { name: 'passphrase' },
    } as BackupRepository['spec'],
  };
}
