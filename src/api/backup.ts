import { conditions, labelName, objectCounts, objectName, progress, timestamp } from './common.ts';
import { array, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

export const BACKUP_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;
export type BackupPhase = (typeof BACKUP_PHASES)[number];

export const backupSpec = object(
  {
    policy: objectName('BackupPolicy this backup belongs to.'),
    source: labelName('Name of the source in that policy.', 40),
    type: optional(
      enumOf(['full', 'incremental'] as const, {
        description: 'full starts a new chain sharing nothing with older ones; incremental stores only what changed.',
        default: 'full',
      }),
    ),
    scheduledTime: optional(timestamp('The schedule slot this run was created for; absent for on-demand backups.')),
  },
  {
    rules: [{ rule: 'self == oldSelf', message: "a Backup's spec is immutable; create a new Backup instead" }],
  },
);

const repositoryState = object({
  repository: string({ maxLength: 253 }),
  role: enumOf(['primary', 'replica'] as const),
  state: enumOf(['Pending', 'Running', 'Succeeded', 'Failed', 'Forgotten'] as const, {
    description: "Forgotten: this repository's retention removed the snapshot while another repository keeps it.",
  }),
  snapshotId: optional(string({ maxLength: 128 })),
  completionTime: optional(timestamp('When the copy in this repository was complete and verified.')),
  message: optional(string({ maxLength: 4096 })),
  attempts: optional(integer({ minimum: 1, description: 'Copy attempts made to this replica so far.' })),
  nextRetryTime: optional(
    timestamp('When a failed copy is tried again (back-off from 30 s doubling to 10 min); absent when not retried.'),
  ),
  jobName: optional(string({ description: 'The Job of the latest copy attempt.', maxLength: 63 })),
  failureTime: optional(timestamp('When the latest copy attempt to this repository failed.')),
});

export const backupStatus = object({
  phase: optional(enumOf(BACKUP_PHASES)),
  conditions: optional(conditions),
  startTime: optional(timestamp('When the run started.')),
  completionTime: optional(timestamp('When the run ended.')),
  snapshotId: optional(string({ description: 'Snapshot id in the primary repository.', maxLength: 128 })),
  chainId: optional(string({ description: 'Chain the snapshot belongs to (set by its full backup).', maxLength: 128 })),
  logicalBytes: optional(integer({ minimum: 0, description: 'Bytes read from the source.' })),
  storedBytes: optional(integer({ minimum: 0, description: 'Bytes this snapshot references in the repository.' })),
  uploadedBytes: optional(
    integer({ minimum: 0, description: 'New bytes written by this run (after dedup and compression).' }),
  ),
  size: optional(string({ description: 'logicalBytes for people, e.g. 1.2 GiB.', maxLength: 32 })),
  objects: optional(objectCounts('Record counts per object: rows per table, files per directory.')),
  skipped: optional(
    array(object({ name: string({ maxLength: 1024 }), reason: string({ maxLength: 4096 }) }), {
      description: 'Objects that could not be backed up, and why.',
      maxItems: 1000,
    }),
  ),
  repositories: optional(
    array(repositoryState, {
      description: 'Where this backup is stored, per repository.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['repository'],
    }),
  ),
  jobName: optional(string({ maxLength: 63 })),
  progress: optional(progress),
  error: optional(string({ description: 'Why the run failed.', maxLength: 32768 })),
});

export type BackupSpec = TypeOf<typeof backupSpec>;
export type BackupStatus = TypeOf<typeof backupStatus>;
