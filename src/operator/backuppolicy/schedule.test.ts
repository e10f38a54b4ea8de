// R-SCHED: cron and interval evaluation, due/missed decisions, and deterministic names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Schedule, Trigger } from '../../api/schedule.ts';
import { isCode } from '../../errors.ts';
import {
  type BackupType,
  backupName,
  type DueRuns,
  type DueRunsInput,
  dueRuns,
  MISSED_COUNT_LIMIT,
  nextRun,
  previousRun,
  scheduleStamp,
  timeZoneExists,
  validateSchedule,
} from './schedule.ts';

const at = (iso: string) => new Date(iso);
const iso = (date: Date | undefined) => date?.toISOString();
const BERLIN = 'Europe/Berlin';
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CREATED = at('2025-06-01T00:00:00Z');

describe('nextRun', () => {
  // [what, trigger, time zone, after, policyCreated, expected]
  const cases: [string, Trigger, string, string, string, string][] = [
    ['daily in UTC', { cron: '0 2 * * *' }, 'UTC', '2026-01-01T00:00:00Z', '', '2026-01-01T02:00:00.000Z'],
    ['strictly after a slot', { cron: '0 2 * * *' }, 'UTC', '2026-01-01T02:00:00Z', '', '2026-01-02T02:00:00.000Z'],
    ['just before a slot', { cron: '0 2 * * *' }, 'UTC', '2026-01-01T01:59:59.999Z', '', '2026-01-01T02:00:00.000Z'],
    ['Berlin winter (CET, +1)', { cron: '0 2 * * *' }, BERLIN, '2026-01-15T00:00:00Z', '', '2026-01-15T01:00:00.000Z'],
    ['Berlin summer (CEST, +2)', { cron: '0 2 * * *' }, BERLIN, '2026-07-14T23:00:00Z', '', '2026-07-15T00:00:00.000Z'],
    [
      'spring forward: 02:30 does not exist, runs once at 03:00 CEST',
      { cron: '30 2 * * *' },
      BERLIN,
      '2026-03-28T12:00:00Z',
      '',
      '2026-03-29T01:00:00.000Z',
    ],
    [
      'spring forward: the day after is normal again',
      { cron: '30 2 * * *' },
      BERLIN,
      '2026-03-29T01:00:00Z',
      '',
      '2026-03-30T00:30:00.000Z',
    ],
    [
      'fall back: 02:30 occurs twice, runs at the first (CEST)',
      { cron: '30 2 * * *' },
      BERLIN,
      '2026-10-24T12:00:00Z',
      '',
      '2026-10-25T00:30:00.000Z',
    ],
    [
      'fall back: not again at 02:30 CET',
      { cron: '30 2 * * *' },
      BERLIN,
      '2026-10-25T00:30:00Z',
      '',
      '2026-10-26T01:30:00.000Z',
    ],
    [
      'fall back: an hourly run runs in both repeated hours',
      { cron: '0 * * * *' },
      BERLIN,
      '2026-10-25T00:00:00Z',
      '',
      '2026-10-25T01:00:00.000Z',
    ],
    ['@daily is local midnight', { cron: '@daily' }, BERLIN, '2026-07-01T12:00:00Z', '', '2026-07-01T22:00:00.000Z'],
    ['@hourly', { cron: '@hourly' }, 'UTC', '2026-07-01T12:00:00Z', '', '2026-07-01T13:00:00.000Z'],
    ['@weekly is Sunday 00:00', { cron: '@weekly' }, 'UTC', '2026-01-01T00:00:00Z', '', '2026-01-04T00:00:00.000Z'],
    ['weekly 0 2 * * 0 (Sunday)', { cron: '0 2 * * 0' }, 'UTC', '2026-01-01T00:00:00Z', '', '2026-01-04T02:00:00.000Z'],
    [
      'day-of-week 7 is Sunday too',
      { cron: '0 2 * * 7' },
      'UTC',
      '2026-01-01T00:00:00Z',
      '',
      '2026-01-04T02:00:00.000Z',
    ],
    [
      'weekly on the spring-forward Sunday in Berlin',
      { cron: '0 2 * * 0' },
      BERLIN,
      '2026-03-28T00:00:00Z',
      '',
      '2026-03-29T01:00:00.000Z',
    ],
    ['weekday names', { cron: '0 2 * * MON-FRI' }, 'UTC', '2026-01-03T00:00:00Z', '', '2026-01-05T02:00:00.000Z'],
    ['month names, lowercase', { cron: '0 2 1 jul *' }, 'UTC', '2026-01-03T00:00:00Z', '', '2026-07-01T02:00:00.000Z'],
    ['steps in a range', { cron: '10-50/20 * * * *' }, 'UTC', '2026-01-01T00:31:00Z', '', '2026-01-01T00:50:00.000Z'],
    ['last day of month (L)', { cron: '0 3 L * *' }, 'UTC', '2026-02-01T00:00:00Z', '', '2026-02-28T03:00:00.000Z'],
    [
      'every 14d from a Monday: every other Monday',
      { every: '14d', anchor: '2026-01-05T02:00:00Z' },
      'UTC',
      '2026-01-06T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-01-19T02:00:00.000Z',
    ],
    [
      'every 14d: strictly after a slot',
      { every: '14d', anchor: '2026-01-05T02:00:00Z' },
      'UTC',
      '2026-01-19T02:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-02-02T02:00:00.000Z',
    ],
    [
      'every 2w keeps local 02:00 across spring forward',
      { every: '2w', anchor: '2026-03-23T02:00:00+01:00' },
      BERLIN,
      '2026-03-24T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-04-06T00:00:00.000Z',
    ],
    [
      'every 14d in UTC counts exact days',
      { every: '14d', anchor: '2026-03-23T02:00:00+01:00' },
      'UTC',
      '2026-03-24T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-04-06T01:00:00.000Z',
    ],
    [
      'every 6h counts elapsed time across spring forward',
      { every: '6h', anchor: '2026-03-28T22:00:00Z' },
      BERLIN,
      '2026-03-29T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-03-29T04:00:00.000Z',
    ],
    [
      'anchor in the future: the first run is the anchor',
      { every: '1d', anchor: '2026-02-01T00:00:00Z' },
      'UTC',
      '2026-01-10T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-02-01T00:00:00.000Z',
    ],
    [
      'anchor defaults to the policy creation',
      { every: '6h' },
      'UTC',
      '2026-01-01T12:00:00Z',
      '2026-01-01T10:15:30Z',
      '2026-01-01T16:15:30.000Z',
    ],
    [
      'the creation itself is the first slot',
      { every: '6h' },
      'UTC',
      '2026-01-01T10:15:29Z',
      '2026-01-01T10:15:30Z',
      '2026-01-01T10:15:30.000Z',
    ],
  ];
  for (const [what, trigger, timeZone, after, created, expected] of cases) {
    it(what, () => {
      assert.equal(iso(nextRun(trigger, timeZone, at(after), created ? at(created) : CREATED)), expected);
    });
  }

  it('every 14d from a Monday stays on Mondays for a year, in Berlin', () => {
    const trigger = { every: '14d', anchor: '2026-01-05T23:30:00+01:00' };
    let t = at('2026-01-01T00:00:00Z');
    const weekday = new Intl.DateTimeFormat('en-US', { timeZone: BERLIN, weekday: 'short', hour: 'numeric' });
    for (let i = 0; i < 26; i++) {
      t = nextRun(trigger, BERLIN, t, CREATED);
      assert.match(weekday.format(t), /^Mon.* 11 PM$/, t.toISOString());
    }
  });

  it('a daily fixed-time cron runs exactly once per local day through both DST changes', () => {
    for (const cron of ['30 2 * * *', '0 2 * * *', '59 1 * * *', '0 3 * * *']) {
      const days = new Set<string>();
      const dayOf = new Intl.DateTimeFormat('en-CA', {
        timeZone: BERLIN,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      });
      let t = at('2025-12-31T23:00:00Z');
      let count = 0;
      for (;;) {
        t = nextRun({ cron }, BERLIN, t, CREATED);
        if (t >= at('2026-12-31T23:00:00Z')) break;
        days.add(dayOf.format(t));
        count++;
      }
      assert.equal(count, 365, cron);
      assert.equal(days.size, 365, cron);
    }
  });

  it('refuses an invalid trigger with InvalidArgument', () => {
    for (const trigger of [{ cron: '61 * * * *' }, { every: '0s' }, { every: 'soon' }]) {
      assert.throws(
        () => nextRun(trigger, 'UTC', at('2026-01-01T00:00:00Z'), CREATED),
        (error: unknown) => isCode(error, 'InvalidArgument'),
        JSON.stringify(trigger),
      );
    }
    assert.throws(
      () => nextRun({ cron: '0 2 * * *' }, 'Mars/Olympus', at('2026-01-01T00:00:00Z'), CREATED),
      (error: unknown) => isCode(error, 'InvalidArgument'),
    );
  });
});

describe('previousRun', () => {
  it('includes a slot exactly at the given time', () => {
    assert.equal(
      iso(previousRun({ cron: '0 2 * * *' }, 'UTC', at('2026-01-02T02:00:00Z'), CREATED)),
      '2026-01-02T02:00:00.000Z',
    );
    assert.equal(
      iso(previousRun({ cron: '0 2 * * *' }, 'UTC', at('2026-01-02T01:59:59.999Z'), CREATED)),
      '2026-01-01T02:00:00.000Z',
    );
  });
  it('agrees with nextRun across DST', () => {
    assert.equal(
      iso(previousRun({ cron: '30 2 * * *' }, BERLIN, at('2026-03-29T12:00:00Z'), CREATED)),
      '2026-03-29T01:00:00.000Z',
    );
    assert.equal(
      iso(previousRun({ cron: '30 2 * * *' }, BERLIN, at('2026-10-25T12:00:00Z'), CREATED)),
      '2026-10-25T00:30:00.000Z',
    );
  });
  it('is undefined before the anchor', () => {
    assert.equal(
      previousRun({ every: '1d', anchor: '2026-02-01T00:00:00Z' }, 'UTC', at('2026-01-31T00:00:00Z'), CREATED),
      undefined,
    );
  });
});

describe('dueRuns', () => {
  const daily: Schedule = { full: { cron: '0 2 * * *' } };
  const weeklyFullDailyIncr: Schedule = { full: { cron: '0 2 * * 0' }, incremental: { cron: '0 2 * * *' } };
  const windowed: Schedule = {
    full: { cron: '0 12 * * *' },
    timeZone: BERLIN,
    window: { start: '01:00', duration: '4h' },
  };

  interface Case {
    what: string;
    schedule: Schedule;
    created: string;
    lastFull?: string;
    lastIncr?: string;
    now: string;
    due?: [BackupType, string];
    next: string;
    missed?: number;
    blocked?: DueRuns['blocked'];
  }
  const cases: Case[] = [
    {
      what: 'first run: no backfill of a slot before the policy existed',
      schedule: daily,
      created: '2026-01-01T10:00:00Z',
      now: '2026-01-01T12:00:00Z',
      next: '2026-01-02T02:00:00Z',
    },
    {
      what: 'first run: the first slot after creation is due',
      schedule: daily,
      created: '2026-01-01T10:00:00Z',
      now: '2026-01-02T02:00:30Z',
      due: ['full', '2026-01-02T02:00:00Z'],
      next: '2026-01-03T02:00:00Z',
    },
    {
      what: 'a slot already recorded is not due again',
      schedule: daily,
      created: '2026-01-01T10:00:00Z',
      lastFull: '2026-01-02T02:00:00Z',
      now: '2026-01-02T05:00:00Z',
      next: '2026-01-03T02:00:00Z',
    },
    {
      what: 'a slot exactly at now is due',
      schedule: daily,
      created: '2026-01-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-02T02:00:00Z',
      due: ['full', '2026-01-02T02:00:00Z'],
      next: '2026-01-03T02:00:00Z',
    },
    {
      what: 'operator down 3 days: one catch-up for the latest slot, 2 missed',
      schedule: daily,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-04T10:00:00Z',
      due: ['full', '2026-01-04T02:00:00Z'],
      next: '2026-01-05T02:00:00Z',
      missed: 2,
    },
    {
      what: 'operator down 3 days, hourly: one catch-up, 71 missed',
      schedule: { full: { cron: '0 * * * *' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-04T02:30:00Z',
      due: ['full', '2026-01-04T02:00:00Z'],
      next: '2026-01-04T03:00:00Z',
      missed: 71,
    },
    {
      what: 'down since creation: missed counts slots from creation on',
      schedule: daily,
      created: '2026-01-01T00:00:00Z',
      now: '2026-01-04T10:00:00Z',
      due: ['full', '2026-01-04T02:00:00Z'],
      next: '2026-01-05T02:00:00Z',
      missed: 3,
    },
    {
      what: 'missed counting stops at the limit',
      schedule: { full: { cron: '* * * * *' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T00:00:00Z',
      now: '2026-01-04T00:00:30Z',
      due: ['full', '2026-01-04T00:00:00Z'],
      next: '2026-01-04T00:01:00Z',
      missed: MISSED_COUNT_LIMIT,
    },
    {
      what: 'interval anchored at creation runs at creation',
      schedule: { full: { every: '14d' } },
      created: '2026-01-05T02:00:00Z',
      now: '2026-01-05T02:00:05Z',
      due: ['full', '2026-01-05T02:00:00Z'],
      next: '2026-01-19T02:00:00Z',
    },
    {
      what: 'interval with a future anchor: nothing until the anchor',
      schedule: { full: { every: '14d', anchor: '2026-02-02T02:00:00Z' } },
      created: '2026-01-01T00:00:00Z',
      now: '2026-01-10T00:00:00Z',
      next: '2026-02-02T02:00:00Z',
    },
    {
      what: 'interval: 3 missed slots give one catch-up',
      schedule: { full: { every: '1d', anchor: '2026-01-01T00:00:00Z' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T00:00:00Z',
      now: '2026-01-05T12:00:00Z',
      due: ['full', '2026-01-05T00:00:00Z'],
      next: '2026-01-06T00:00:00Z',
      missed: 3,
    },
    {
      what: 'full and incremental at the same slot: only the full runs',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2025-12-28T02:00:00Z',
      lastIncr: '2026-01-03T02:00:00Z',
      now: '2026-01-04T02:05:00Z',
      due: ['full', '2026-01-04T02:00:00Z'],
      next: '2026-01-05T02:00:00Z',
    },
    {
      what: 'the full recorded for a shared slot supersedes that incremental',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-04T02:00:00Z',
      lastIncr: '2026-01-03T02:00:00Z',
      now: '2026-01-04T06:00:00Z',
      next: '2026-01-05T02:00:00Z',
    },
    {
      what: 'an incremental slot',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-04T02:00:00Z',
      lastIncr: '2026-01-05T02:00:00Z',
      now: '2026-01-06T03:00:00Z',
      due: ['incremental', '2026-01-06T02:00:00Z'],
      next: '2026-01-07T02:00:00Z',
    },
    {
      what: 'incrementals missed while down',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-04T02:00:00Z',
      lastIncr: '2026-01-05T02:00:00Z',
      now: '2026-01-08T03:00:00Z',
      due: ['incremental', '2026-01-08T02:00:00Z'],
      next: '2026-01-09T02:00:00Z',
      missed: 2,
    },
    {
      what: 'an incremental with no full yet runs as a full',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-31T12:00:00Z',
      now: '2026-01-01T02:05:00Z',
      due: ['full', '2026-01-01T02:00:00Z'],
      next: '2026-01-02T02:00:00Z',
    },
    {
      what: 'both types pending after downtime: the full first',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2025-12-28T02:00:00Z',
      lastIncr: '2026-01-02T02:00:00Z',
      now: '2026-01-05T03:00:00Z',
      due: ['full', '2026-01-04T02:00:00Z'],
      next: '2026-01-06T02:00:00Z',
    },
    {
      what: '... then the later incremental (its floor is the full)',
      schedule: weeklyFullDailyIncr,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-04T02:00:00Z',
      lastIncr: '2026-01-02T02:00:00Z',
      now: '2026-01-05T03:00:00Z',
      due: ['incremental', '2026-01-05T02:00:00Z'],
      next: '2026-01-06T02:00:00Z',
    },
    {
      what: 'suspend: a pending slot does not run, nextRunTime is still computed',
      schedule: { ...daily, suspend: true },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-02T03:00:00Z',
      next: '2026-01-03T02:00:00Z',
      blocked: 'Suspended',
    },
    {
      what: 'suspend with nothing pending',
      schedule: { ...daily, suspend: true },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-02T02:00:00Z',
      now: '2026-01-02T03:00:00Z',
      next: '2026-01-03T02:00:00Z',
    },
    {
      what: 'window: a slot outside it waits for the next opening',
      schedule: windowed,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-14T11:00:00Z',
      now: '2026-01-15T11:05:00Z',
      next: '2026-01-16T00:00:00Z',
      blocked: 'OutsideWindow',
    },
    {
      what: 'window: due at the opening, scheduledTime stays the slot',
      schedule: windowed,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-14T11:00:00Z',
      now: '2026-01-16T00:00:00Z',
      due: ['full', '2026-01-15T11:00:00Z'],
      next: '2026-01-17T00:00:00Z',
    },
    {
      what: 'window: closed again after the operator was down through it',
      schedule: windowed,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-14T11:00:00Z',
      now: '2026-01-16T06:00:00Z',
      next: '2026-01-17T00:00:00Z',
      blocked: 'OutsideWindow',
    },
    {
      what: 'window: a slot inside it runs at once',
      schedule: { ...windowed, full: { cron: '0 2 * * *' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-14T01:00:00Z',
      now: '2026-01-15T01:00:10Z',
      due: ['full', '2026-01-15T01:00:00Z'],
      next: '2026-01-16T01:00:00Z',
    },
    {
      what: 'window across midnight',
      schedule: { full: { cron: '0 12 * * *' }, window: { start: '22:00', duration: '6h' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-14T12:00:00Z',
      now: '2026-01-16T03:59:00Z',
      due: ['full', '2026-01-15T12:00:00Z'],
      next: '2026-01-16T22:00:00Z',
    },
    {
      what: 'window: slots folded into the opening of the run are deferred, not missed',
      schedule: { full: { cron: '0 * * * *' }, window: { start: '01:00', duration: '2h' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-02T01:30:00Z',
      due: ['full', '2026-01-02T01:00:00Z'],
      next: '2026-01-02T02:00:00Z',
      missed: 0,
    },
    {
      what: 'window: a run that could have started on its own is missed',
      schedule: { full: { cron: '0 * * * *' }, window: { start: '01:00', duration: '2h' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-01-01T02:00:00Z',
      now: '2026-01-02T02:30:00Z',
      due: ['full', '2026-01-02T02:00:00Z'],
      next: '2026-01-03T01:00:00Z',
      missed: 1,
    },
    {
      what: 'window start in the spring-forward gap opens at 03:00 CEST',
      schedule: { ...windowed, window: { start: '02:30', duration: '1h' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-03-27T11:00:00Z',
      now: '2026-03-28T11:30:00Z',
      next: '2026-03-29T01:00:00Z',
      blocked: 'OutsideWindow',
    },
    {
      what: 'window start in the repeated fall-back hour opens at the first 02:30',
      schedule: { ...windowed, window: { start: '02:30', duration: '1h' } },
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-10-23T10:00:00Z',
      now: '2026-10-24T10:30:00Z',
      next: '2026-10-25T00:30:00Z',
      blocked: 'OutsideWindow',
    },
    {
      what: 'window opening in Berlin follows DST (01:00 CEST is 23:00 UTC)',
      schedule: windowed,
      created: '2025-12-01T00:00:00Z',
      lastFull: '2026-07-14T10:00:00Z',
      now: '2026-07-15T10:30:00Z',
      next: '2026-07-15T23:00:00Z',
      blocked: 'OutsideWindow',
    },
  ];

  for (const c of cases) {
    it(c.what, () => {
      const input: DueRunsInput = {
        schedule: c.schedule,
        policyCreated: at(c.created),
        lastFullTime: c.lastFull ? at(c.lastFull) : undefined,
        lastIncrementalTime: c.lastIncr ? at(c.lastIncr) : undefined,
        now: at(c.now),
      };
      const result = dueRuns(input);
      assert.deepEqual(
        result.due && { type: result.due.type, scheduledTime: iso(result.due.scheduledTime) },
        c.due && { type: c.due[0], scheduledTime: iso(at(c.due[1])) },
        'due',
      );
      assert.equal(iso(result.nextRunTime), iso(at(c.next)), 'nextRunTime');
      assert.equal(result.missed, c.missed ?? 0, 'missed');
      assert.equal(result.blocked, c.blocked, 'blocked');
    });
  }

  it('simulated operator over a month in Berlin: every slot once, a full supersedes the shared incremental', () => {
    const schedule: Schedule = {
      full: { cron: '0 2 * * 0' },
      incremental: { cron: '0 2,8,14,20 * * *' },
      timeZone: BERLIN,
    };
    const runs: string[] = [];
    let lastFullTime: Date | undefined;
    let lastIncrementalTime: Date | undefined;
    const created = at('2026-03-02T00:00:00Z'); // a Monday
    for (let now = created.getTime(); now < at('2026-04-01T00:00:00Z').getTime(); now += 15 * 60_000) {
      const { due } = dueRuns({
        schedule,
        policyCreated: created,
        lastFullTime,
        lastIncrementalTime,
        now: new Date(now),
      });
      if (!due) continue;
      runs.push(backupName('p', 's', due.type, due.scheduledTime));
      if (due.type === 'full') lastFullTime = due.scheduledTime;
      else lastIncrementalTime = due.scheduledTime;
    }
    assert.equal(new Set(runs).size, runs.length, 'no duplicate names');
    const fulls = runs.filter((name) => name.includes('-full-'));
    // Monday's first incremental runs as a full (no chain yet), then the Sundays at 02:00 CET (01:00Z); on
    // 03-29 02:00 does not exist and the full runs at 03:00 CEST (01:00Z).
    assert.deepEqual(fulls, [
      'p-s-full-20260302t0100z',
      'p-s-full-20260308t0100z',
      'p-s-full-20260315t0100z',
      'p-s-full-20260322t0100z',
      'p-s-full-20260329t0100z',
    ]);
    // Incrementals: 03-02 three (02:00 became the full); 03-03..03-28 26 days of four, less the three Sunday
    // 02:00 slots the full superseded; 03-29 three (no 02:00 that day: not a fixed time, so it is skipped);
    // 03-30 and 03-31 four each.
    assert.equal(runs.length - fulls.length, 3 + (26 * 4 - 3) + 3 + 8);
    assert.ok(!runs.includes('p-s-incr-20260308t0100z'));
  });
});

describe('validateSchedule', () => {
  const valid: Schedule[] = [
    { full: { cron: '0 2 * * *' } },
    {
      full: { cron: '0 2 * * 0' },
      incremental: { every: '6h' },
      timeZone: BERLIN,
      window: { start: '01:00', duration: '4h' },
      suspend: false,
    },
    { full: { every: '14d', anchor: '2026-01-05T02:00:00Z' }, timeZone: 'America/New_York' },
    { full: { every: '2w', anchor: '2026-01-05T02:00:00.5+01:00' } },
    { full: { cron: '0 2 * * *' }, timeZone: 'US/Pacific' },
  ];
  for (const schedule of valid) {
    it(`accepts ${JSON.stringify(schedule)}`, () => assert.deepEqual(validateSchedule(schedule), []));
  }

  const validCrons = [
    '@yearly',
    '@annually',
    '@monthly',
    '@weekly',
    '@daily',
    '@hourly',
    '*/15 * * * *',
    '0 0-23/2 * * *',
    '0,30 1,13 * * *',
    '0 2 * JAN,jul *',
    '0 2 * * mon-fri',
    '0 2 * * 7',
    '0 2 1-7 * 1',
    '0 3 L * *',
    '0 3 * * 5#2',
    '0 2 ? * *',
    '0 0 29 2 *',
    ' 0  2 * * * ',
  ];
  for (const cron of validCrons) {
    it(`accepts cron ${JSON.stringify(cron)}`, () => assert.deepEqual(validateSchedule({ full: { cron } }), []));
  }

  // [cron, what the message must say]
  const invalidCrons: [string, RegExp][] = [
    ['61 * * * *', /minute value 61 is out of range 0-59/],
    ['* 24 * * *', /hour value 24 is out of range 0-23/],
    ['* * 32 * *', /day-of-month value 32 is out of range 1-31/],
    ['* * 0 * *', /day-of-month value 0 is out of range 1-31/],
    ['* * * 13 *', /month value 13 is out of range 1-12/],
    ['0 2 * * 8', /day-of-week value 8 is out of range 0-7/],
    ['*/0 * * * *', /step must be at least 1/],
    ['*/61 * * * *', /step 61 is larger than 59/],
    ['5/10 * * * *', /a step needs \* or a range/],
    ['5-1 * * * *', /range 5-1 is backwards/],
    ['0 2 * * FUNDAY', /day-of-week value "FUNDAY" is not a number or a name \(SUN-SAT\)/],
    ['0 2 * * *,', /empty list item/],
    ['0 ? * * *', /hour value "\?" is not a number/],
    ['0 0 30 2 *', /never runs/],
    ['0 0 31 4,6,9,11 *', /never runs/],
    ['0 2 * *', /must have 5 fields.*got 4/],
    ['0 0 2 * * *', /must have 5 fields.*got 6/],
    ['@reboot', /unknown macro "@reboot"/],
    ['@midnight', /unknown macro/],
  ];
  for (const [cron, message] of invalidCrons) {
    it(`refuses cron ${JSON.stringify(cron)} naming spec.schedule.full.cron`, () => {
      const problems = validateSchedule({ full: { cron } });
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]?.field, 'spec.schedule.full.cron');
      assert.match(problems[0]?.message ?? '', message);
      assert.ok(problems[0]?.message.includes(cron), 'the message quotes the expression');
    });
  }

  it('names the incremental trigger', () => {
    assert.deepEqual(
      validateSchedule({ full: { cron: '0 2 * * 0' }, incremental: { cron: '0 2 * * 8' } }).map((p) => p.field),
      ['spec.schedule.incremental.cron'],
    );
  });

  for (const timeZone of ['Mars/Olympus', 'Europe/Berlinn', 'CEST+1', '+01:00', 'Europe/Berlin ', '']) {
    it(`refuses time zone ${JSON.stringify(timeZone)} naming spec.schedule.timeZone`, () => {
      const problems = validateSchedule({ full: { cron: '0 2 * * *' }, timeZone });
      assert.deepEqual(
        problems.map((p) => p.field),
        ['spec.schedule.timeZone'],
      );
      assert.match(problems[0]?.message ?? '', /unknown time zone/);
    });
  }

  const otherProblems: [string, Schedule, string[]][] = [
    ['a zero interval', { full: { every: '0s' } }, ['spec.schedule.full.every']],
    ['a bad interval', { full: { every: '1 day' } }, ['spec.schedule.full.every']],
    ['cron and every together', { full: { cron: '0 2 * * *', every: '1d' } }, ['spec.schedule.full']],
    ['neither cron nor every', { full: {} }, ['spec.schedule.full']],
    [
      'anchor with cron',
      { full: { cron: '0 2 * * *', anchor: '2026-01-01T00:00:00Z' } },
      ['spec.schedule.full.anchor'],
    ],
    ['anchor not RFC 3339', { full: { every: '1d', anchor: '2026-01-01' } }, ['spec.schedule.full.anchor']],
    ['anchor not a date', { full: { every: '1d', anchor: '2026-13-01T00:00:00Z' } }, ['spec.schedule.full.anchor']],
    [
      'window start 24:00',
      { full: { cron: '0 2 * * *' }, window: { start: '24:00', duration: '1h' } },
      ['spec.schedule.window.start'],
    ],
    [
      'window duration bad',
      { full: { cron: '0 2 * * *' }, window: { start: '01:00', duration: '4 hours' } },
      ['spec.schedule.window.duration'],
    ],
    [
      'several at once',
      { full: { cron: '61 * * * *' }, incremental: { every: '0m' }, timeZone: 'Mars/Olympus' },
      ['spec.schedule.timeZone', 'spec.schedule.full.cron', 'spec.schedule.incremental.every'],
    ],
  ];
  for (const [what, schedule, fields] of otherProblems) {
    it(`refuses ${what}`, () => {
      assert.deepEqual(
        validateSchedule(schedule).map((p) => p.field),
        fields,
      );
    });
  }

  it('uses the given path', () => {
    assert.deepEqual(
      validateSchedule({ full: { cron: '61 * * * *' } }, 'schedule').map((p) => p.field),
      ['schedule.full.cron'],
    );
  });

  it('timeZoneExists knows UTC, zones and links', () => {
    for (const zone of ['UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'US/Pacific', 'Etc/GMT+5']) {
      assert.ok(timeZoneExists(zone), zone);
    }
    assert.equal(timeZoneExists('Mars/Olympus'), false);
  });
});

describe('backupName', () => {
  it('is <policy>-<source>-<type>-<UTC stamp>', () => {
    assert.equal(
      backupName('nightly', 'orders', 'full', at('2026-03-29T01:00:00Z')),
      'nightly-orders-full-20260329t0100z',
    );
    assert.equal(
      backupName('nightly', 'orders', 'incremental', at('2026-03-29T01:00:00Z')),
      'nightly-orders-incr-20260329t0100z',
    );
  });

  it('adds seconds only when the slot has them', () => {
    assert.equal(scheduleStamp(at('2026-01-01T10:15:30Z')), '20260101t101530z');
    assert.equal(scheduleStamp(at('2026-01-01T10:15:00Z')), '20260101t1015z');
  });

  it('is deterministic and distinct per input', () => {
    const time = at('2026-03-29T01:00:00Z');
    assert.equal(backupName('p', 's', 'full', time), backupName('p', 's', 'full', new Date(time.getTime())));
    const names = new Set([
      backupName('p', 's', 'full', time),
      backupName('p', 's', 'incremental', time),
      backupName('p', 't', 'full', time),
      backupName('q', 's', 'full', time),
      backupName('p', 's', 'full', at('2026-03-29T01:01:00Z')),
    ]);
    assert.equal(names.size, 5);
  });

  it('stays a valid DNS-1123 subdomain of at most 253 characters for the longest names', () => {
    const time = at('2026-03-29T01:00:00Z');
    const source = 's'.repeat(40);
    const policies = [
      `${'a'.repeat(200)}.${'b'.repeat(52)}`,
      `${'a'.repeat(200)}.${'c'.repeat(52)}`,
      `${'a'.repeat(199)}-${'b'.repeat(53)}`,
      `${'a'.repeat(208)}.b`,
      'x'.repeat(253),
    ];
    const names = policies.map((policy) => backupName(policy, source, 'incremental', time));
    for (const name of names) {
      assert.ok(name.length <= 253, `${name.length}`);
      assert.match(name, SUBDOMAIN);
      assert.ok(name.endsWith('-incr-20260329t0100z'), name);
    }
    assert.equal(new Set(names).size, names.length, 'cut names stay distinct');
    assert.deepEqual(
      policies.map((policy) => backupName(policy, source, 'incremental', time)),
      names,
    );
  });

  it('refuses names that are not DNS-1123', () => {
    for (const [policy, source] of [
      ['Nightly', 'orders'],
      ['nightly', 'Orders'],
      ['nightly', 'a.b'],
      ['-x', 'orders'],
      ['nightly', ''],
    ]) {
      assert.throws(
        () => backupName(policy as string, source as string, 'full', at('2026-01-01T00:00:00Z')),
        (error: unknown) => isCode(error, 'InvalidArgument'),
      );
    }
  });
});
