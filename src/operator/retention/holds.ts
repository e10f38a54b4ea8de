/**
 * What retention may not remove yet, whatever its rule says (R-RET, R-RESTORE, immutability):
 * - a Backup named by a RestoreRequest that has not ended (no phase Succeeded/Failed), by
 *   `spec.from.backupName` or the resolved `status.backupName`: held in every repository until the
 *   request ends or is deleted;
 * - a snapshot inside its repository's `spec.immutability.period` (its completion in that repository
 *   plus the period is still ahead): held in that repository until the period ends.
 */
import type { BackupStatus } from '../../api/backup.ts';
import { parseDuration } from '../../api/duration.ts';
import type { Backup, BackupRepository, RestoreRequest } from '../../api/kinds.ts';

export interface Hold {
  reason: string;
  /** When the hold ends by the clock; absent when it ends with an event (a RestoreRequest ending). */
  until?: Date;
}

export interface HoldContext {
  restores: RestoreRequest[];
  repositories: Map<string, BackupRepository>;
  now: Date;
}

const ended = (r: RestoreRequest) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed';

/** Why `backup` must stay in `repository` now (empty: retention may remove it there). */
export function holdsOn(backup: Backup, repository: string, context: HoldContext): Hold[] {
  const name = backup.metadata.name ?? '';
  const holds: Hold[] = context.restores
    .filter((r) => !ended(r) && (r.spec.from.backupName === name || r.status?.backupName === name))
    .map((r) => ({ reason: `RestoreRequest ${r.metadata.name} has not ended` }));
  const until = immutableUntil(backup, repository, context.repositories.get(repository));
  if (until && until > context.now)
    holds.push({ reason: `immutable in ${repository} until ${until.toISOString()}`, until });
  return holds;
}

/** The end of the immutability period of the snapshot `backup` holds in `repository`, if any. */
function immutableUntil(backup: Backup, repository: string, spec: BackupRepository | undefined): Date | undefined {
  const period = spec?.spec.immutability?.period;
  if (!period || backup.status?.phase !== 'Succeeded') return undefined;
  const entry = backup.status.repositories?.find((r) => r.repository === repository);
  if (entry && entry.state !== 'Succeeded') return undefined;
  const written = snapshotTime(entry, backup.status);
  return written ? new Date(written.getTime() + parseDuration(period)) : undefined;
}

function snapshotTime(
  entry: NonNullable<BackupStatus['repositories']>[number] | undefined,
  status: BackupStatus,
): Date | undefined {
  const iso = entry?.completionTime ?? status.completionTime;
  return iso ? new Date(iso) : undefined;
}
