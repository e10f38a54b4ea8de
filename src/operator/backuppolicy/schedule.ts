/**
 * Scheduling (R-SCHED): when a source's next Backup is due, and what it is called.
 *
 * Pure functions of (schedule, recorded slots, now): the BackupPolicy controller lists the Backups of a
 * source, passes the scheduled times of the newest full and incremental ones, and creates the Backup
 * `dueRuns` returns under the name `backupName` gives. Names come from the scheduled slot, so a restarted
 * operator finds the Backup it already created (AlreadyExists → adopt) instead of creating a second one.
 *
 * Cron (evaluated by croner in `timeZone`):
 * - Standard 5 fields, minute hour day-of-month month day-of-week; `*`, lists, ranges, steps (`*\/15`,
 *   `1-20/5`), month and weekday names (JAN, mon-fri), day-of-week 0 or 7 for Sunday, `?` as `*` in the two
 *   day fields, croner's `L`, `W` and `#` (`0 3 L * *`, `0 3 * * 5#2`), and the macros @yearly, @annually,
 *   @monthly, @weekly, @daily, @hourly. Day-of-month and day-of-week restricted together match either (OR,
 *   as Vixie cron).
 * - DST: a "fixed-time" expression (one minute value and one hour value, e.g. `30 2 * * *`) runs once per
 *   matching day. Spring forward (02:30 does not exist that day in Europe/Berlin): it runs ONCE at the first
 *   valid instant after the gap (03:00 CEST), not skipped. Fall back (02:30 occurs twice): it runs ONCE, at
 *   the FIRST occurrence (02:30 CEST, not again at 02:30 CET).
 * - Every other expression (`0 * * * *`, `*\/15 2 * * *`, `0 2,14 * * *`) matches local times that exist:
 *   in the spring-forward gap its times are skipped (that day `0 2,14 * * *` runs at 14:00 only); in the
 *   repeated hour it runs at each real instant that matches (an hourly run runs in both hours, an hour of
 *   real time apart). This is croner's rule (after Vixie cron's fixed-time/wildcard split).
 *
 * Intervals (`every`, counted from `anchor`, default the policy's creation time):
 * - Slots are anchor + k·every for k ≥ 0; nothing before the anchor, so an anchor in the future means the
 *   first run is at the anchor.
 * - An interval that is a whole number of days (`14d`, `2w`, also `48h`) steps in calendar days in
 *   `timeZone` and keeps the anchor's local time of day across DST ("every 14d" from Monday 02:00 is every
 *   other Monday at 02:00 local, summer and winter), with the gap/overlap rules of cron above. Any other
 *   interval (`6h`, `90m`) counts elapsed time exactly.
 *
 * Due runs (`dueRuns`), per source and type:
 * - A slot is pending when it is the most recent slot ≤ now and later than the last recorded slot of
 *   that type. Several missed slots (operator down, or suspended) give ONE catch-up run for the latest of
 *   them; `missed` counts the earlier ones that will never run.
 * - First run: with no recorded slot, the latest slot is pending only if it is at or after the policy's
 *   creation (no backfill before the policy existed; an interval anchored at creation runs at once).
 * - A full covers every incremental slot up to its own: the incremental floor is the later of the last
 *   incremental and the last full slot. When both types are pending, the full runs first; so at a shared
 *   slot only the full runs, and its record makes the incremental of that slot not pending any more.
 * - An incremental with no full recorded yet runs as a full (an incremental needs a chain to extend).
 * - `suspend: true`: nothing is due; a running backup is not touched (the controller never deletes Jobs
 *   for it). nextRunTime is still computed. On resume, the latest slot missed while suspended runs once.
 * - Window (daily `start` HH:MM local in `timeZone`, open for `duration`; a start in a DST gap opens at the
 *   first valid instant after it): a run STARTS only while a window is open. A pending slot inside a
 *   window is due at once; a pending slot outside any window (or one whose window closed while the
 *   operator was down) waits for the next opening and is due then. The run keeps the slot's time as
 *   scheduledTime (deterministic name); if newer slots arrive before the window opens, the latest one is
 *   taken. `missed` counts runs, not slots: slots outside the window that share one opening would have
 *   made one run, and those folded into the due run's own opening are deferred, not missed. A window of
 *   24h or more is always open.
 *
 * The controller validates with `validateSchedule` first; the other functions throw TidemarkError
 * InvalidArgument on a schedule that does not validate.
 */
import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import { DAY_MS, MINUTE_MS, parseDuration } from '../../api/duration.ts';
import type { Schedule, Trigger } from '../../api/schedule.ts';
import { TidemarkError } from '../../errors.ts';

export type BackupType = 'full' | 'incremental';

export interface FieldProblem {
  /** Path of the offending field, e.g. `spec.schedule.full.cron`. */
  field: string;
  message: string;
}

export interface DueRunsInput {
  schedule: Schedule;
  policyCreated: Date;
  /** spec.scheduledTime of the newest scheduled full Backup of this source (any phase), if any. */
  lastFullTime?: Date | undefined;
  /** spec.scheduledTime of the newest scheduled incremental Backup of this source (any phase), if any. */
  lastIncrementalTime?: Date | undefined;
  now: Date;
}

export interface DueRun {
  type: BackupType;
  /** The slot this run is for (not when it starts): the name is derived from it. */
  scheduledTime: Date;
}

export interface DueRuns {
  /** The Backup to create now, if any. */
  due: DueRun | undefined;
  /**
   * When the next run becomes due: the next slot after now (moved to the next window opening if it falls
   * outside the window), or, while a pending slot waits for the window, that window's opening. Requeue then.
   */
  nextRunTime: Date;
  /**
   * Runs the catch-up in `due` stands in for: earlier slots of its type, after the last recorded one, that
   * would have run on their own (0 when nothing is due). Counting stops after MISSED_COUNT_LIMIT slots.
   */
  missed: number;
  /** Why a pending slot was not started now. */
  blocked?: 'Suspended' | 'OutsideWindow';
}

/** Counting missed slots stops after this many (an every-minute cron after a month down would cost seconds). */
export const MISSED_COUNT_LIMIT = 1000;

// ---------------------------------------------------------------------------------------------------------
// Validation

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@hourly': '0 * * * *',
};

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Extensions croner supports in this field (checked by croner itself). */
  special?: RegExp;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, special: /^(L|LW|L-[0-9]+|[0-9]+W)$/ },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 0, max: 7, names: WEEKDAYS, special: /^([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5])$/ },
];

/** Checks one cron field; returns a message or undefined. */
function checkCronField(text: string, field: CronField): string | undefined {
  const value = (token: string): number | undefined => {
    if (/^[0-9]+$/.test(token)) return Number(token);
    const index = field.names?.indexOf(token) ?? -1;
    return index < 0 ? undefined : index + (field.name === 'month' ? 1 : 0);
  };
  for (const rawItem of text.split(',')) {
    const item = rawItem.toUpperCase();
    if (item === '') return `${field.name} "${text}" has an empty list item`;
    if (field.special?.test(item)) continue;
    const [range = '', step, extra] = item.split('/');
    if (extra !== undefined) return `${field.name} item "${rawItem}" has more than one "/"`;
    if (step !== undefined) {
      if (!/^[0-9]+$/.test(step)) return `${field.name} step "${step}" is not a number`;
      if (Number(step) < 1) return `${field.name} step must be at least 1, got ${step}`;
      if (Number(step) > field.max) return `${field.name} step ${step} is larger than ${field.max}`;
    }
    if (range === '*' || (range === '?' && field.special)) continue;
    const bounds = range.split('-');
    if (bounds.length > 2) return `${field.name} range "${range}" has more than one "-"`;
    if (step !== undefined && bounds.length === 1) {
      return `${field.name} item "${rawItem}": a step needs * or a range before it, e.g. */${step} or 0-30/${step}`;
    }
    const numbers: number[] = [];
    for (const bound of bounds) {
      const n = value(bound);
      if (n === undefined) {
        const names = field.names ? ` or a name (${field.names[0]}-${field.names.at(-1)})` : '';
        return `${field.name} value "${bound}" is not a number${names}`;
      }
      if (n < field.min || n > field.max) {
        return `${field.name} value ${bound} is out of range ${field.min}-${field.max}`;
      }
      numbers.push(n);
    }
    const [from = 0, to = from] = numbers;
    if (from > to) return `${field.name} range ${range} is backwards (${from} > ${to})`;
  }
  return undefined;
}

/** The 5-field pattern croner evaluates, or a message saying what is wrong. */
function cronPattern(expression: string): { pattern: string } | { error: string } {
  const text = expression.trim();
  if (text.startsWith('@')) {
    const pattern = MACROS[text.toLowerCase()];
    return pattern
      ? { pattern }
      : { error: `unknown macro "${text}"; use @yearly, @annually, @monthly, @weekly, @daily or @hourly` };
  }
  const parts = text.split(/\s+/);
  if (parts.length !== 5) {
    return {
      error: `must have 5 fields (minute hour day-of-month month day-of-week) or be a macro such as @daily; got ${parts.length}`,
    };
  }
  for (const [i, part] of parts.entries()) {
    const problem = checkCronField(part, CRON_FIELDS[i] as CronField);
    if (problem) return { error: problem };
  }
  // `?` (Quartz's "no specific value") means `*` in the two day fields.
  const pattern = parts.map((part, i) => (i === 2 || i === 4 ? part.replaceAll('?', '*') : part)).join(' ');
  return { pattern };
}

const TIME_ZONE_SHAPE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
const RFC3339 = /^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$/;
const WINDOW_START = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;
/** Fixed reference for "does this cron ever match" (kept pure: no clock read). */
const EVER_REFERENCE = new Date(Date.UTC(2000, 0, 1));

/** Whether `timeZone` names a zone of the IANA database this Node.js knows (links such as US/Pacific too). */
export function timeZoneExists(timeZone: string): boolean {
  if (!TIME_ZONE_SHAPE.test(timeZone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * What the API server's CEL rules cannot check (the full cron grammar, that the time zone exists), plus the
 * CEL checks again (cheap, and unit tests have no API server). Empty when the schedule is usable.
 */
export function validateSchedule(schedule: Schedule, path = 'spec.schedule'): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const timeZone = schedule.timeZone ?? 'UTC';
  if (!timeZoneExists(timeZone)) {
    problems.push({
      field: `${path}.timeZone`,
      message: `unknown time zone "${timeZone}": must be an IANA time zone name such as UTC or Europe/Berlin`,
    });
  }
  const triggers: [string, Trigger | undefined][] = [
    ['full', schedule.full],
    ['incremental', schedule.incremental],
  ];
  for (const [name, trigger] of triggers) {
    if (trigger === undefined) {
      if (name === 'full') problems.push({ field: `${path}.full`, message: 'is required' });
      continue;
    }
    const at = `${path}.${name}`;
    if ((trigger.cron === undefined) === (trigger.every === undefined)) {
      problems.push({ field: at, message: 'set exactly one of cron or every' });
    }
    if (trigger.cron !== undefined) {
      const result = cronPattern(trigger.cron);
      if ('error' in result) {
        problems.push({ field: `${at}.cron`, message: `invalid cron expression "${trigger.cron}": ${result.error}` });
      } else {
        try {
          const cron = new Cron(result.pattern, { mode: '5-part', domAndDow: false });
          if (cron.nextRun(EVER_REFERENCE) === null) {
            problems.push({
              field: `${at}.cron`,
              message: `cron expression "${trigger.cron}" never runs: no date has that day-of-month in those months`,
            });
          }
        } catch (error) {
          problems.push({
            field: `${at}.cron`,
            message: `invalid cron expression "${trigger.cron}": ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      }
    }
    if (trigger.every !== undefined) {
      try {
        parseDuration(trigger.every);
      } catch (error) {
        problems.push({ field: `${at}.every`, message: (error as Error).message });
      }
    }
    if (trigger.anchor !== undefined) {
      if (trigger.every === undefined) {
        problems.push({ field: `${at}.anchor`, message: 'anchor only applies to an every interval' });
      } else if (!RFC3339.test(trigger.anchor) || Number.isNaN(Date.parse(trigger.anchor))) {
        problems.push({
          field: `${at}.anchor`,
          message: `invalid time "${trigger.anchor}": must be RFC 3339, e.g. 2026-01-05T02:00:00Z`,
        });
      }
    }
  }
  if (schedule.window) {
    if (!WINDOW_START.test(schedule.window.start)) {
      problems.push({
        field: `${path}.window.start`,
        message: `invalid time of day "${schedule.window.start}": must be HH:MM between 00:00 and 23:59`,
      });
    }
    try {
      parseDuration(schedule.window.duration);
    } catch (error) {
      problems.push({ field: `${path}.window.duration`, message: (error as Error).message });
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Wall-clock time in a zone. A "wall" value is the local date and time written as if it were UTC, in ms.

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch (cause) {
      throw new TidemarkError('InvalidArgument', `unknown time zone "${timeZone}"`, { cause });
    }
    formatters.set(timeZone, format);
  }
  return format;
}

function wallClock(instant: number, timeZone: string): number {
  const fields: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(instant))) fields[part.type] = Number(part.value);
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = fields;
  return Date.UTC(year, month - 1, day, hour, minute, second) + (((instant % 1000) + 1000) % 1000);
}

const offsetAt = (instant: number, timeZone: string) => wallClock(instant, timeZone) - instant;

/**
 * The instant a local wall-clock time names in `timeZone`: the first one when the time occurs twice (fall
 * back), the first valid instant after the gap when it does not occur (spring forward).
 */
function instantOf(wall: number, timeZone: string): number {
  const offsetBefore = offsetAt(wall - DAY_MS, timeZone);
  const offsetAfter = offsetAt(wall + DAY_MS, timeZone);
  const candidates = [wall - offsetBefore, wall - offsetAfter].filter((t) => wallClock(t, timeZone) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  // In a gap: the transition lies between the two readings; find its first instant.
  let low = Math.min(wall - offsetBefore, wall - offsetAfter);
  let high = Math.max(wall - offsetBefore, wall - offsetAfter);
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (wallClock(mid, timeZone) > wall) high = mid;
    else low = mid;
  }
  return high;
}

const localMidnight = (instant: number, timeZone: string) => Math.floor(wallClock(instant, timeZone) / DAY_MS) * DAY_MS;

/** The local date (YYYY-MM-DD) of `instant` in `timeZone`. */
export const localDate = (instant: number, timeZone: string): string =>
  new Date(localMidnight(instant, timeZone)).toISOString().slice(0, 10);

/** The local day `date` (YYYY-MM-DD) in `timeZone`: the instants it starts and ends at (23 or 25 hours apart across DST). */
export function localDayOf(date: string, timeZone: string): { date: string; start: number; end: number } {
  const midnight = Date.parse(`${date}T00:00:00Z`);
  return { date, start: instantOf(midnight, timeZone), end: instantOf(midnight + DAY_MS, timeZone) };
}

// ---------------------------------------------------------------------------------------------------------
// Triggers

type Plan =
  | { kind: 'cron'; cron: Cron; timeZone: string }
  | { kind: 'every'; every: number; anchor: number; anchorWall: number; calendar: boolean; timeZone: string };

const crons = new Map<string, Cron>();

function cronFor(expression: string, timeZone: string): Cron {
  const key = `${timeZone}\n${expression}`;
  let cron = crons.get(key);
  if (!cron) {
    const result = cronPattern(expression);
    if ('error' in result) {
      throw new TidemarkError('InvalidArgument', `invalid cron expression "${expression}": ${result.error}`);
    }
    formatter(timeZone); // refuse an unknown zone with our own error
    try {
      cron = new Cron(result.pattern, { timezone: timeZone, mode: '5-part', domAndDow: false });
    } catch (cause) {
      throw new TidemarkError('InvalidArgument', `invalid cron expression "${expression}"`, { cause });
    }
    if (crons.size >= 512) crons.clear();
    crons.set(key, cron);
  }
  return cron;
}

function plan(trigger: Trigger, timeZone: string, policyCreated: Date): Plan {
  if (trigger.cron !== undefined) return { kind: 'cron', cron: cronFor(trigger.cron, timeZone), timeZone };
  if (trigger.every === undefined) throw new TidemarkError('InvalidArgument', 'trigger has neither cron nor every');
  const every = parseDuration(trigger.every);
  const anchor = trigger.anchor === undefined ? policyCreated.getTime() : Date.parse(trigger.anchor);
  if (Number.isNaN(anchor)) {
    throw new TidemarkError('InvalidArgument', `invalid anchor "${trigger.anchor ?? policyCreated.toString()}"`);
  }
  const calendar = every % DAY_MS === 0;
  return { kind: 'every', every, anchor, anchorWall: calendar ? wallClock(anchor, timeZone) : 0, calendar, timeZone };
}

function intervalSlot(p: Extract<Plan, { kind: 'every' }>, k: number): number {
  if (k === 0 || !p.calendar) return p.anchor + k * p.every;
  return instantOf(p.anchorWall + k * p.every, p.timeZone);
}

/** Largest k with slot k ≤ t; -1 before the anchor. */
function intervalIndex(p: Extract<Plan, { kind: 'every' }>, t: number): number {
  if (t < p.anchor) return -1;
  let k = Math.floor((t - p.anchor) / p.every);
  while (k > 0 && intervalSlot(p, k) > t) k--;
  while (intervalSlot(p, k + 1) <= t) k++;
  return k;
}

/** First slot strictly after t. */
function slotAfter(p: Plan, t: number): number {
  if (p.kind === 'every') return intervalSlot(p, intervalIndex(p, t) + 1);
  const next = p.cron.nextRun(new Date(t));
  if (next === null) throw new TidemarkError('InvalidArgument', `cron expression "${p.cron.getPattern()}" never runs`);
  return next.getTime();
}

/** Latest slot at or before t, if any. */
function slotAtOrBefore(p: Plan, t: number): number | undefined {
  if (p.kind === 'every') {
    const k = intervalIndex(p, t);
    return k < 0 ? undefined : intervalSlot(p, k);
  }
  // croner looks strictly before a whole-second reference; cron slots are whole minutes.
  const [previous] = p.cron.previousRuns(1, new Date(Math.floor(t / 1000) * 1000 + 1000));
  return previous !== undefined && previous.getTime() <= t ? previous.getTime() : undefined;
}

/** The first scheduled time strictly after `after` (see the rules at the top of this file). */
export function nextRun(trigger: Trigger, timeZone: string, after: Date, policyCreated: Date): Date {
  return new Date(slotAfter(plan(trigger, timeZone, policyCreated), after.getTime()));
}

/** The latest scheduled time at or before `atOrBefore`, or undefined when there is none (anchor later). */
export function previousRun(
  trigger: Trigger,
  timeZone: string,
  atOrBefore: Date,
  policyCreated: Date,
): Date | undefined {
  const slot = slotAtOrBefore(plan(trigger, timeZone, policyCreated), atOrBefore.getTime());
  return slot === undefined ? undefined : new Date(slot);
}

// ---------------------------------------------------------------------------------------------------------
// Window

interface WindowPlan {
  startMinutes: number;
  duration: number;
  timeZone: string;
}

function windowPlan(schedule: Schedule, timeZone: string): WindowPlan | undefined {
  if (!schedule.window) return undefined;
  const match = WINDOW_START.exec(schedule.window.start);
  if (!match) throw new TidemarkError('InvalidArgument', `invalid window start "${schedule.window.start}"`);
  return {
    startMinutes: Number(match[1]) * 60 + Number(match[2]),
    duration: parseDuration(schedule.window.duration),
    timeZone,
  };
}

const openingOn = (w: WindowPlan, midnightWall: number) =>
  instantOf(midnightWall + w.startMinutes * MINUTE_MS, w.timeZone);

function inWindow(w: WindowPlan, t: number): boolean {
  if (w.duration >= DAY_MS) return true;
  const today = localMidnight(t, w.timeZone);
  for (const daysBack of [2, 1, 0]) {
    const opening = openingOn(w, today - daysBack * DAY_MS);
    if (opening <= t && t < opening + w.duration) return true;
  }
  return false;
}

/** First window opening strictly after t. */
function nextOpening(w: WindowPlan, t: number): number {
  const today = localMidnight(t, w.timeZone);
  for (let day = -1; day <= 2; day++) {
    const opening = openingOn(w, today + day * DAY_MS);
    if (opening > t) return opening;
  }
  throw new TidemarkError('Internal', `no window opening after ${new Date(t).toISOString()}`);
}

/** When a run for slot s may start: s itself inside a window, else the next opening. */
const earliestStart = (w: WindowPlan | undefined, s: number) => (!w || inWindow(w, s) ? s : nextOpening(w, s));

// ---------------------------------------------------------------------------------------------------------
// Due runs

/** The latest slot ≤ now if it is later than `floor` (or, with no floor, at or after the policy's creation). */
function pendingSlot(p: Plan, now: number, created: number, floor: number | undefined): number | undefined {
  const latest = slotAtOrBefore(p, now);
  if (latest === undefined) return undefined;
  return (floor === undefined ? latest >= created : latest > floor) ? latest : undefined;
}

/**
 * Runs the catch-up skips: slots after the floor and before `slot` that would each have started a run of their
 * own had the operator been up. Without a window that is every such slot; with one, slots sharing a window
 * opening would have made one run, and slots folded into the due run's own opening are deferred, not missed.
 */
function countMissed(p: Plan, created: number, floor: number | undefined, slot: number, w: WindowPlan | undefined) {
  const target = earliestStart(w, slot);
  let count = 0;
  let previousStart: number | undefined;
  let s = floor === undefined ? slotAfter(p, created - 1) : slotAfter(p, floor);
  for (let seen = 0; s < slot && seen < MISSED_COUNT_LIMIT; seen++) {
    const start = earliestStart(w, s); // never decreases as s grows
    if (start >= target) break;
    if (start !== previousStart) count++;
    previousStart = start;
    s = slotAfter(p, s);
  }
  return count;
}

const latestOf = (...times: (number | undefined)[]) => {
  const defined = times.filter((t): t is number => t !== undefined);
  return defined.length ? Math.max(...defined) : undefined;
};

/** The scheduler's decision for one source (rules at the top of this file). */
export function dueRuns(input: DueRunsInput): DueRuns {
  const { schedule } = input;
  const timeZone = schedule.timeZone ?? 'UTC';
  const now = input.now.getTime();
  const created = input.policyCreated.getTime();
  const lastFull = input.lastFullTime?.getTime();
  const incrementalFloor = latestOf(input.lastIncrementalTime?.getTime(), lastFull);

  const full = plan(schedule.full, timeZone, input.policyCreated);
  const incremental = schedule.incremental ? plan(schedule.incremental, timeZone, input.policyCreated) : undefined;
  const window = windowPlan(schedule, timeZone);

  const upcoming = Math.min(
    earliestStart(window, slotAfter(full, now)),
    incremental ? earliestStart(window, slotAfter(incremental, now)) : Number.POSITIVE_INFINITY,
  );

  let candidate: { type: BackupType; slot: number; plan: Plan; floor: number | undefined } | undefined;
  const fullSlot = pendingSlot(full, now, created, lastFull);
  if (fullSlot !== undefined) {
    candidate = { type: 'full', slot: fullSlot, plan: full, floor: lastFull };
  } else if (incremental) {
    const slot = pendingSlot(incremental, now, created, incrementalFloor);
    if (slot !== undefined) {
      const type = lastFull === undefined ? 'full' : 'incremental';
      candidate = { type, slot, plan: incremental, floor: incrementalFloor };
    }
  }

  if (!candidate) return { due: undefined, nextRunTime: new Date(upcoming), missed: 0 };
  if (schedule.suspend) return { due: undefined, nextRunTime: new Date(upcoming), missed: 0, blocked: 'Suspended' };
  if (window && !inWindow(window, now)) {
    return { due: undefined, nextRunTime: new Date(nextOpening(window, now)), missed: 0, blocked: 'OutsideWindow' };
  }
  return {
    due: { type: candidate.type, scheduledTime: new Date(candidate.slot) },
    nextRunTime: new Date(upcoming),
    missed: countMissed(candidate.plan, created, candidate.floor, candidate.slot, window),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Names

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const TYPE_TAG: Record<BackupType, string> = { full: 'full', incremental: 'incr' };
const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/**
 * The slot as a UTC stamp in lowercase (names must be): `20260330t0100z`; seconds are added
 * (`20260330t010015z`) only when the slot has them (an interval anchored at a time with seconds).
 */
export function scheduleStamp(time: Date): string {
  if (Number.isNaN(time.getTime())) throw new TidemarkError('InvalidArgument', 'invalid scheduled time');
  const iso = time.toISOString(); // 2026-03-30T01:00:15.000Z
  const seconds = iso.slice(17, 19);
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}t${iso.slice(11, 13)}${iso.slice(14, 16)}${seconds === '00' ? '' : seconds}z`;
}

/**
 * The Backup name for a scheduled run: `<policy>-<source>-<full|incr>-<stamp>`, e.g.
 * `nightly-orders-full-20260330t0100z`. Same inputs, same name. A DNS-1123 subdomain of at most 253
 * characters: when too long, `<policy>-<source>` is cut and an 8-hex hash of (policy, source) keeps it unique.
 */
export function backupName(policy: string, source: string, type: BackupType, scheduledTime: Date): string {
  if (!SUBDOMAIN.test(policy) || policy.length > 253) {
    throw new TidemarkError('InvalidArgument', `policy name "${policy}" is not a DNS-1123 subdomain`);
  }
  if (!LABEL.test(source) || source.length > 63) {
    throw new TidemarkError('InvalidArgument', `source name "${source}" is not a DNS-1123 label`);
  }
  const tail = `-${TYPE_TAG[type]}-${scheduleStamp(scheduledTime)}`;
  const name = `${policy}-${source}${tail}`;
  if (name.length <= 253) return name;
  const hashed = `-${shortHash(`${policy}\n${source}`)}${tail}`;
  const head = `${policy}-${source}`.slice(0, 253 - hashed.length).replace(/[-.]+$/, '');
  return `${head}${hashed}`;
}
