import { parseDuration } from '../../api/duration.ts';
import type { Backup } from '../../api/kinds.ts';
import type { ConditionInput } from '../runtime/conditions.ts';
import { instant } from '../runtime/time.ts';

export interface SourceFreshness {
  name: string;
  /** Completion of the newest successful Backup; absent when the source never succeeded. */
  lastSuccess?: Date;
}

export interface RpoVerdict {
  /** The RPOMet condition; undefined when the policy has no rpo objective (the condition is removed). */
  condition?: ConditionInput;
  /** When the verdict changes next by the clock alone. */
  nextChange?: Date;
}

/**
 * The newest successful Backup among one source's Backups. A Backup being deleted no longer vouches
 * for its snapshot (it may be forgotten already), so it does not count.
 */
export function lastSuccessfulBackup(backups: Backup[]): Backup | undefined {
  // One pass, not a sort: a source can hold thousands of Backups and every reconcile and scrape asks.
  // Among equally new ones the first wins; an unreadable time counts as oldest.
  let newest: Backup | undefined;
  let newestAt = Number.NEGATIVE_INFINITY;
  for (const b of backups) {
    if (b.metadata.deletionTimestamp || b.status?.phase !== 'Succeeded' || !b.status.completionTime) continue;
    const at = instant(b.status.completionTime) ?? Number.NEGATIVE_INFINITY;
    if (newest === undefined || at > newestAt) {
      newest = b;
      newestAt = at;
    }
  }
  return newest;
}

/**
 * RPOMet from each source's last success (R-OBJ), never from an invented time:
 * - True (WithinObjective) while every source has a success newer than the rpo;
 * - False (RPOBreached) when a source's last success is older than the rpo;
 * - False (NoSuccessfulBackup) when a source never succeeded and the policy is older than its rpo;
 * - Unknown (FirstBackupPending) while a source never succeeded and the policy is still in its first
 *   rpo window after creation (the grace window: nobody can expect a backup yet).
 * Messages name times, never ages, so the condition does not change on every pass.
 */
export function rpoVerdict(
  sources: SourceFreshness[],
  rpo: string | undefined,
  policyCreated: Date,
  now: Date,
): RpoVerdict {
  if (rpo === undefined) return {};
  const rpoMs = parseDuration(rpo);
  const graceEnd = new Date(policyCreated.getTime() + rpoMs);
  const changes: number[] = [];
  const never = sources.filter((s) => !s.lastSuccess).map((s) => s.name);
  const breached: string[] = [];
  for (const source of sources) {
    if (!source.lastSuccess) continue;
    const passes = source.lastSuccess.getTime() + rpoMs;
    if (now.getTime() > passes) breached.push(`${source.name} (last success ${source.lastSuccess.toISOString()})`);
    else changes.push(passes);
  }
  const inGrace = now.getTime() <= graceEnd.getTime();
  if (never.length > 0 && inGrace) changes.push(graceEnd.getTime());
  // Just past the instant (a timer may fire a millisecond early and miss it by a whole requeue).
  const nextChange = changes.length ? new Date(Math.min(...changes) + 5) : undefined;
  const result = (condition: ConditionInput): RpoVerdict => ({ condition, ...(nextChange ? { nextChange } : {}) });

  if (never.length > 0 && !inGrace)
    return result({
      type: 'RPOMet',
      status: 'False',
      reason: 'NoSuccessfulBackup',
      message: `RPO ${rpo} not met by: ${[...never.map((n) => `${n} (never succeeded)`), ...breached].join(', ')}`,
    });
  if (breached.length > 0)
    return result({
      type: 'RPOMet',
      status: 'False',
      reason: 'RPOBreached',
      message: `RPO ${rpo} exceeded by: ${breached.join(', ')}`,
    });
  if (never.length > 0)
    return result({
      type: 'RPOMet',
      status: 'Unknown',
      reason: 'FirstBackupPending',
      message: `${never.map((n) => `${n}: never succeeded`).join('; ')}; the policy is in its first RPO window (created ${policyCreated.toISOString()}, rpo ${rpo}): not judged until ${graceEnd.toISOString()}`,
    });
  return result({
    type: 'RPOMet',
    status: 'True',
    reason: 'WithinObjective',
    message: `every source has a backup newer than ${rpo}`,
  });
}
