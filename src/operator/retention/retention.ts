/**
 * Retention (R-RET): which Backups of one source in one repository to keep, and why.
 *
 * `applyRetention` is one I/O-free function (restic's `ApplyPolicy` habit): the controller lists the
 * finished Backups of a source, asks this function, then deletes the removed ones with their snapshots
 * and puts each reason into an Event. `now` and the time zone are injected, so it is tested with golden
 * files (`testdata/`).
 *
 * Inputs are the finished runs of ONE source in ONE repository (the caller leaves out Pending and
 * Running ones and passes the completion time in that repository). Rules, and what we decided where
 * the spec is silent:
 *
 * - Only Succeeded backups hold a snapshot; only they count for keepLastFull, chains, GFS and "newest".
 *   "Newest" orders by completionTime, ties by name, then by input position (both descending), so the
 *   result never depends on input order. The output is in input order, one decision per input.
 * - Defaults say what they do: keepLastFull 7 applies only when the rule sets nothing at all
 *   (no keepLastFull, keepDaily/Weekly/Monthly or maxAge). A rule that sets any of them gets exactly
 *   what it says, plus the two safety rules below (the newest full chain, the newest success).
 * - keepLastFull N (anything below 1 counts as 1): the N newest succeeded full backups are
 *   kept ("newest 3 full backups (#2)"); older fulls are removed ("beyond keepLastFull 3 (#4)") unless
 *   another rule keeps them. Without keepLastFull, a full that no rule keeps is removed ("kept by no
 *   rule"), except the newest full, which always stays ("newest full backup").
 * - Incrementals live until the next full supersedes them: an incremental is removed ("superseded: a
 *   newer full backup started a new chain") once a succeeded full of another chain completed after it.
 *   So only the current chain keeps its incrementals; the incrementals of older fulls that keepLastFull
 *   keeps are NOT kept for that reason (each snapshot is self-contained, so the full alone is a complete
 *   restore point). GFS may still keep any of them. An incremental no full has superseded yet is kept
 *   even when its own full is gone or not in the list.
 * - keepDaily/keepWeekly/keepMonthly N: the newest succeeded backup (full or incremental) of each of the
 *   N newest calendar days / ISO 8601 weeks (Monday first, "2026-W47") / months that have one, with
 *   periods taken in `timeZone`. Periods without a backup do not count (restic's behaviour), so a
 *   source that was paused still keeps N of them.
 * - maxAge alone (no count rule: keepLastFull, keepDaily/Weekly/Monthly) keeps by age: every succeeded
 *   backup that completed at most maxAge before `now` is kept ("younger than maxAge 30d"). With a count
 *   rule, maxAge is only an upper bound. Either way a backup that completed more than maxAge before
 *   `now` (strictly older) is removed even if a rule above keeps it, EXCEPT the newest succeeded full,
 *   the incrementals of its chain that no full superseded, and the newest succeeded backup: never
 *   remove the only way back. Such a backup says it is exempt. maxAge applies to failed backups too.
 * - Failed backups hold no snapshot; they stay visible, bounded: only the newest MAX_FAILED_KEPT (3)
 *   failed backups of a source are kept ("beyond the newest 3 failed backups (#4)"), and one is removed
 *   once a newer succeeded backup exists AND it failed more than 24 hours before `now` (strictly), so
 *   recent failures stay visible; until then its reason says why it stays.
 * - The newest succeeded backup is always kept ("newest successful backup"), whatever the rules say,
 *   so retention never removes everything.
 * - A kept backup lists every rule that keeps it; a removed one lists every reason it goes (maxAge
 *   first).
 *
 * Bad input (an invalid date, an unknown time zone, a malformed maxAge) throws InvalidArgument.
 */
import type { BackupPolicySpec, Retention } from '../../api/backuppolicy.ts';
import { DAY_MS, parseDuration } from '../../api/duration.ts';
import { TidemarkError, withContext } from '../../errors.ts';

export interface RetentionInput {
  name: string;
  type: 'full' | 'incremental';
  chainId: string;
  completionTime: Date;
  phase: 'Succeeded' | 'Failed';
}

export interface RetentionDecision {
  name: string;
  keep: boolean;
  reasons: string[];
}

/** The keepLastFull a policy gets when its retention sets no rule at all. */
export const DEFAULT_KEEP_LAST_FULL = 7;
/** How many failed backups of one source stay visible at most. */
export const MAX_FAILED_KEPT = 3;
/** How long a failed backup stays visible after a newer backup succeeded. */
export const FAILED_GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * The rule for one repository of a policy: the policy's `retention` for the primary, a replica's own
 * `retention` for that replica, else the primary's. A replica's retention replaces the primary's as a
 * whole (fields are not merged one by one), as the API server defaults each object on its own.
 */
export function retentionForRepository(policySpec: BackupPolicySpec, repositoryName: string): Retention {
  const primary = withDefaults(policySpec.retention);
  if (repositoryName === policySpec.repository) return primary;
  const replica = policySpec.replicas?.find((r) => r.repository === repositoryName);
  if (!replica) {
    throw new TidemarkError(
      'InvalidArgument',
      `repository "${repositoryName}" is neither the primary nor a replica of this policy`,
    );
  }
  return replica.retention ? withDefaults(replica.retention) : primary;
}

const RULE_FIELDS = ['keepLastFull', 'keepDaily', 'keepWeekly', 'keepMonthly', 'maxAge'] as const;
const COUNT_FIELDS = ['keepLastFull', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const;

/** keepLastFull 7 only when the rule sets nothing at all: a rule that says something gets what it says. */
export function withDefaults(rule: Retention | undefined): Retention {
  const given = rule ?? {};
  if (RULE_FIELDS.some((f) => given[f] !== undefined)) return { ...given };
  return { ...given, keepLastFull: DEFAULT_KEEP_LAST_FULL };
}

interface Entry {
  index: number;
  backup: RetentionInput;
  time: number;
}

const gfsRules = [
  { option: 'keepDaily', period: 'day', key: (d: LocalDate) => `${d.year}-${pad(d.month)}-${pad(d.day)}` },
  { option: 'keepWeekly', period: 'week', key: (d: LocalDate) => isoWeek(d) },
  { option: 'keepMonthly', period: 'month', key: (d: LocalDate) => `${d.year}-${pad(d.month)}` },
] as const;

export function applyRetention(
  backups: RetentionInput[],
  rule: Retention,
  now: Date,
  timeZone = 'UTC',
): RetentionDecision[] {
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new TidemarkError('InvalidArgument', 'retention: now is not a valid date');
  const entries: Entry[] = backups.map((backup, index) => {
    const time = backup.completionTime.getTime();
    if (Number.isNaN(time)) {
      throw new TidemarkError('InvalidArgument', `retention: backup ${backup.name} has an invalid completionTime`);
    }
    return { index, backup, time };
  });
  const effective = withDefaults(rule);
  const maxAgeMs = effective.maxAge === undefined ? undefined : maxAgeOf(effective.maxAge);
  const keepLastFull =
    effective.keepLastFull === undefined ? undefined : Math.max(1, Math.floor(effective.keepLastFull));
  const byAge = maxAgeMs !== undefined && COUNT_FIELDS.every((f) => effective[f] === undefined);

  const succeeded = entries.filter((e) => e.backup.phase === 'Succeeded').sort(newestFirst);
  const fulls = succeeded.filter((e) => e.backup.type === 'full');
  const newest = succeeded[0];
  const newestFull = fulls[0];
  const fullRank = new Map(fulls.map((e, i) => [e.index, i + 1]));
  const superseded = (e: Entry) => fulls.some((f) => f.time > e.time && f.backup.chainId !== e.backup.chainId);

  const gfs = gfsReasons(succeeded, effective, timeZone);
  const failedRank = new Map(
    entries
      .filter((e) => e.backup.phase === 'Failed')
      .sort(newestFirst)
      .map((e, i) => [e.index, i + 1]),
  );

  return entries.map((e): RetentionDecision => {
    const { name } = e.backup;
    const tooOld = maxAgeMs !== undefined && nowMs - e.time > maxAgeMs;
    const maxAgeReason = `older than maxAge ${effective.maxAge}`;

    if (e.backup.phase === 'Failed') {
      const newerSuccess = newest !== undefined && newest.time > e.time;
      const graceOver = nowMs - e.time > FAILED_GRACE_MS;
      const remove: string[] = [];
      const rank = failedRank.get(e.index) ?? 0;
      if (tooOld) remove.push(maxAgeReason);
      if (rank > MAX_FAILED_KEPT) remove.push(`beyond the newest ${MAX_FAILED_KEPT} failed backups (#${rank})`);
      if (newerSuccess && graceOver) remove.push('failed more than 24h ago and a newer backup succeeded');
      if (remove.length) return { name, keep: false, reasons: remove };
      const why = newerSuccess
        ? 'failed less than 24h ago (kept so the failure stays visible)'
        : 'failed and no newer backup has succeeded yet';
      return { name, keep: true, reasons: [why] };
    }

    const keep: string[] = [];
    const remove: string[] = [];
    let currentChain = false;
    if (e.backup.type === 'full') {
      const rank = fullRank.get(e.index) ?? 0;
      if (keepLastFull === undefined) {
        if (e === newestFull) keep.push('newest full backup');
        else remove.push('kept by no rule');
      } else if (rank > keepLastFull) remove.push(`beyond keepLastFull ${keepLastFull} (#${rank})`);
      else if (keepLastFull === 1) keep.push('newest full backup (keepLastFull 1)');
      else keep.push(`newest ${keepLastFull} full backups (#${rank})`);
    } else if (superseded(e)) {
      remove.push('superseded: a newer full backup started a new chain');
    } else if (newestFull && e.backup.chainId === newestFull.backup.chainId) {
      keep.push('incremental of the current chain');
      currentChain = true;
    } else {
      keep.push('incremental not yet superseded by a full backup');
    }
    keep.push(...(gfs.get(e.index) ?? []));
    if (byAge && !tooOld) keep.push(`younger than maxAge ${effective.maxAge}`);
    const isNewest = e === newest;
    if (isNewest) keep.push('newest successful backup');

    if (tooOld) {
      if (e === newestFull || currentChain) {
        keep.push(`older than maxAge ${effective.maxAge} but exempt: the newest full backup and its chain stay`);
      } else if (isNewest) {
        keep.push(`older than maxAge ${effective.maxAge} but exempt: the newest successful backup stays`);
      } else {
        return { name, keep: false, reasons: [maxAgeReason, ...remove] };
      }
    }
    if (keep.length) return { name, keep: true, reasons: keep };
    return { name, keep: false, reasons: remove };
  });
}

function newestFirst(a: Entry, b: Entry): number {
  if (a.time !== b.time) return b.time - a.time;
  if (a.backup.name !== b.backup.name) return a.backup.name < b.backup.name ? 1 : -1;
  return b.index - a.index;
}

/** For each GFS rule, the newest succeeded backup of each of the N newest periods that have one. */
function gfsReasons(succeededNewestFirst: Entry[], rule: Retention, timeZone: string): Map<number, string[]> {
  const reasons = new Map<number, string[]>();
  const active = gfsRules.filter((g) => (rule[g.option] ?? 0) > 0);
  if (active.length === 0) return reasons;
  const localDate = localDateIn(timeZone);
  const dates = new Map(succeededNewestFirst.map((e) => [e.index, localDate(e.time)]));
  for (const g of active) {
    const n = rule[g.option] ?? 0;
    const seen = new Set<string>();
    for (const e of succeededNewestFirst) {
      const date = dates.get(e.index);
      if (!date) continue;
      const key = g.key(date);
      if (seen.has(key)) continue;
      if (seen.size >= n) break;
      seen.add(key);
      const list = reasons.get(e.index) ?? [];
      list.push(`last backup of ${g.period} ${key} (${g.option} ${n})`);
      reasons.set(e.index, list);
    }
  }
  return reasons;
}

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

function localDateIn(timeZone: string): (ms: number) => LocalDate {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    });
  } catch (cause) {
    throw new TidemarkError('InvalidArgument', `retention: unknown time zone "${timeZone}"`, { cause });
  }
  return (ms) => {
    const parts = format.formatToParts(ms);
    const part = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
    return { year: part('year'), month: part('month'), day: part('day') };
  };
}

/** ISO 8601 week of a calendar date: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(date: LocalDate): string {
  const utc = Date.UTC(date.year, date.month - 1, date.day);
  const weekday = (new Date(utc).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(utc + (3 - weekday) * DAY_MS);
  const weekYear = thursday.getUTCFullYear();
  const dayOfYear = (thursday.getTime() - Date.UTC(weekYear, 0, 1)) / DAY_MS + 1;
  return `${weekYear}-W${pad(Math.ceil(dayOfYear / 7))}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function maxAgeOf(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw withContext('retention maxAge', error);
  }
}
