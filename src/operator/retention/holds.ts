/**
 * What retention may not remove yet, whatever its rule says (R-RET, R-RESTORE, immutability):
 * - a Backup named by a RestoreRequest that has not ended (no phase Succeeded/Failed), by
 *   `spec.from.backupName` or the resolved `status.backupName`: held in every repository until the
 *   request ends or is deleted;
 * - a snapshot inside its repository's `spec.immutability.period` (its completion in that repository
 *   plus the period is still ahead): held in that repository until the period ends.
 */
import type { Backup, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import { immutableUntil } from '../../repository/immutability.ts';

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
  const until = heldUntil(backup, repository, context.repositories.get(repository), context.now);
  if (until) holds.push({ reason: `immutable in ${repository} until ${until.toISOString()}`, until });
  return holds;
}

/** The end of the immutability period of the snapshot `backup` holds in `repository`, if still ahead. */
function heldUntil(
  backup: Backup,
  repository: string,
  spec: BackupRepository | undefined,
  now: Date,
): Date | undefined {
  if (backup.status?.phase !== 'Succeeded') return undefined;
  const entry = backup.status.repositories?.find((r) => r.repository === repository);
  if (entry && entry.state !== 'Succeeded') return undefined;
  const written = entry?.completionTime ?? backup.status.completionTime;
  return written ? immutableUntil(written, spec?.spec.immutability?.period, now) : undefined;
}
