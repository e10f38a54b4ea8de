import { conditions, duration, labelName, objectName, secretKeyRef, secretRef, timestamp } from './common.ts';
import { boolean, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

const immutable = (what: string) => ({
  rule: 'self == oldSelf',
  message: `${what} is immutable: changing it would orphan the backups already stored there; create a new BackupRepository instead`,
});

export const backupRepositorySpec = object(
  {
    provider: enumOf(['s3', 'azureBlob', 'filesystem'] as const, {
      description: 'Storage provider.',
      rules: [immutable('provider')],
    }),
    s3: optional(
      object(
        {
          bucket: string({
            description: 'Bucket name.',
            minLength: 3,
            maxLength: 63,
            rules: [immutable('s3.bucket')],
          }),
          endpoint: optional(
            string({ description: 'Endpoint URL for S3-compatible servers; omit for AWS.', maxLength: 2048 }),
          ),
          forcePathStyle: optional(boolean({ description: 'Use path-style addressing (most S3-compatible servers).' })),
        },
        { description: 'Amazon S3 or an S3-compatible server.' },
      ),
    ),
    azureBlob: optional(
      object(
        {
          container: string({
            description: 'Blob container name.',
            minLength: 3,
            maxLength: 63,
            rules: [immutable('azureBlob.container')],
          }),
          endpoint: optional(
            string({
              description: 'Blob service URL, e.g. https://ACCOUNT.blob.core.windows.net.',
              maxLength: 2048,
            }),
          ),
        },
        { description: 'Azure Blob Storage.' },
      ),
    ),
    filesystem: optional(
      object(
        {
          path: string({
            description: 'Absolute path as seen by the agent.',
            maxLength: 4096,
            rules: [immutable('filesystem.path')],
          }),
          claimName: optional(objectName('PersistentVolumeClaim mounted at path in agent Jobs.')),
        },
        { description: 'A directory, e.g. on a mounted volume (NFS).' },
      ),
    ),
    prefix: optional(
      string({
        description: 'Key prefix inside the bucket or container.',
        maxLength: 512,
        rules: [immutable('prefix')],
      }),
    ),
    region: labelName("Where the data lives (e.g. eu-central-1); checked against a policy's allowedRegions."),
    credentialsSecret: optional(
      secretRef(
        'Secret with the provider credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3; AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or AZURE_STORAGE_CONNECTION_STRING) for azureBlob.',
      ),
    ),
    encryptionKeySecret: secretKeyRef(
      'Secret holding the repository passphrase; data is always encrypted client-side (AES-256-GCM).',
      'passphrase',
    ),
    immutability: optional(
      object(
        {
          period: duration(
            'No snapshot younger than this is forgotten: not by deleting its Backup (even annotated tidemark.dev/forget=true), not by retention, not by an agent forget Job.',
          ),
        },
        {
          description:
            'Tidemark-enforced minimum age before a snapshot may be removed. Not a provider lock: Tidemark neither sets nor checks S3 Object Lock or Azure immutability, so whoever holds the storage credentials can still delete objects.',
        },
      ),
    ),
  },
  {
    rules: [
      {
        rule: "self.provider != 's3' || has(self.s3)",
        message: 'provider s3 needs an s3 block',
        fieldPath: '.s3',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.provider != 'azureBlob' || has(self.azureBlob)",
        message: 'provider azureBlob needs an azureBlob block',
        fieldPath: '.azureBlob',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.provider != 'filesystem' || has(self.filesystem)",
        message: 'provider filesystem needs a filesystem block',
        fieldPath: '.filesystem',
        reason: 'FieldValueRequired',
      },
      {
        rule: '(has(self.s3) ? 1 : 0) + (has(self.azureBlob) ? 1 : 0) + (has(self.filesystem) ? 1 : 0) == 1',
        message: 'set exactly one of s3, azureBlob or filesystem, matching provider',
      },
      {
        rule: "self.provider == 'filesystem' || has(self.credentialsSecret)",
        message: 'credentialsSecret is required for s3 and azureBlob',
        fieldPath: '.credentialsSecret',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.provider != 'filesystem' || self.filesystem.path.startsWith('/')",
        message: 'filesystem.path must be absolute',
        fieldPath: '.filesystem.path',
      },
    ],
  },
);

export const backupRepositoryStatus = object({
  conditions: optional(conditions),
  initialized: optional(boolean({ description: 'The repository format has been written.' })),
  repositoryId: optional(string({ description: 'Id of the repository format instance.', maxLength: 128 })),
  formatVersion: optional(integer({ minimum: 1 })),
  storedBytes: optional(integer({ minimum: 0, description: 'Bytes stored at the provider.' })),
  size: optional(string({ description: 'storedBytes for people, e.g. 12.4 GiB.', maxLength: 32 })),
  lastCheckTime: optional(timestamp('When reachability and credentials were last checked.')),
  observedGeneration: optional(integer({ minimum: 0 })),
});

export type BackupRepositorySpec = TypeOf<typeof backupRepositorySpec>;
export type BackupRepositoryStatus = TypeOf<typeof backupRepositoryStatus>;
