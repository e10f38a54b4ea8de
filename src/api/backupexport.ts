import { conditions, duration, objectCounts, objectName, timestamp } from './common.ts';
import { enumOf, integer, object, optional, string } from './schema.ts';

export const EXPORT_PHASES = ['Pending', 'Running', 'Ready', 'Failed', 'Expired'] as const;
export type ExportPhase = (typeof EXPORT_PHASES)[number];

/** How long an export's link lasts unless the spec says otherwise. */
export const DEFAULT_EXPORT_EXPIRY = '7d';

export const backupExportSpec = object(
  {
    backup: objectName('The Backup to export, in this namespace; it must have succeeded.'),
    expiresAfter: optional(
      duration(
        'How long the download link works, counted from when the export is ready; then the ZIP is deleted. At most 7d on S3 (a presigned URL lasts no longer).',
      ),
    ),
  },
  {
    rules: [
      { rule: 'self == oldSelf', message: "a BackupExport's spec is immutable; create a new BackupExport instead" },
    ],
  },
);

export const backupExportStatus = object({
  phase: optional(enumOf(EXPORT_PHASES)),
  conditions: optional(conditions),
  jobName: optional(string({ description: 'The Job writing (or deleting) the export.', maxLength: 63 })),
  startTime: optional(timestamp('When the export started.')),
  completionTime: optional(timestamp('When the ZIP was written.')),
  expiryTime: optional(timestamp('When the link stops working and the ZIP is deleted.')),
  repository: optional(objectName('The BackupRepository the ZIP was written to (the primary of the Backup).')),
  objectKey: optional(
    string({
      description:
        "The ZIP's key in the repository's bucket or container (under exports/, outside the repository format).",
      maxLength: 1024,
    }),
  ),
  location: optional(
    string({
      description:
        'Where the ZIP is for someone with access to the storage: s3://, azblob://, or a path in the repository volume for filesystem repositories (which get no link).',
      maxLength: 2048,
    }),
  ),
  sizeBytes: optional(integer({ minimum: 0, description: 'Size of the ZIP.' })),
  size: optional(string({ description: 'sizeBytes for people, e.g. 1.2 GiB.', maxLength: 32 })),
  secretName: optional(
    objectName('The Secret (owned by this export) whose key `url` holds the download link; never shown here.'),
  ),
  objects: optional(objectCounts('What the ZIP holds: rows per table (database/table), or files for a volume.')),
  error: optional(string({ maxLength: 32768 })),
});
