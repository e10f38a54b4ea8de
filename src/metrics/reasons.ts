/**
 * The `reason` label's fixed set: the reasons of the Succeeded condition the operator writes on a
 * finished Backup or RestoreRequest (backup/decide.ts, backup/volume-snapshot.ts, restorerequest/).
 * Anything else (a reason added later, or written by hand) is reported as "Other", so the label
 * stays bounded whatever the objects say.
 */
export const BACKUP_REASONS = [
  'Completed',
  'JobFailed',
  'JobLost',
  'JobRejected',
  'PodCannotStart',
  'PolicyNotFound',
  'SourceNotFound',
  'RepositoryNotFound',
  'VolumeSnapshotsUnavailable',
  'VolumeSnapshotFailed',
  'VolumeSnapshotNotReady',
] as const;

export const RESTORE_REASONS = [
  'Completed',
  'JobFailed',
  'JobLost',
  'JobRejected',
  'BackupNotFound',
  'BackupNotRestorable',
  'RepositoryNotFound',
  'SourceNotFound',
  'InvalidSource',
  'InvalidTarget',
  'TargetNotAllowed',
  'UnknownScript',
  'Unsupported',
] as const;

export const OTHER_REASON = 'Other';

export function boundedReason(known: readonly string[], reason: string | undefined): string {
  return reason !== undefined && known.includes(reason) ? reason : OTHER_REASON;
}
