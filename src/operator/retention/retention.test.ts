// R-RET: retention decisions, checked against golden files in testdata/.
// testdata/*.json hold an input (backups, rule, now, time zone) and the expected decisions;
// testdata/simulation/*.json hold generated runs (a schedule over days or a year) and their outcome.
// Set UPDATE_GOLDEN=1 to rewrite the expected parts from the current code, then review the diff.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../../test/harness/tools.ts';
import type { BackupPolicySpec, Retention } from '../../api/backuppolicy.ts';
import { isCode } from '../../errors.ts';
import {
  applyRetention,
  FAILED_GRACE_MS,
  isoWeek,
  type RetentionDecision,
  type RetentionInput,
  retentionForRepository,
} from './retention.ts';

const testdata = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const update = process.env.UPDATE_GOLDEN === '1';

interface BackupJson extends Omit<RetentionInput, 'completionTime'> {
  completionTime: string;
}

interface GoldenCase {
  description: string;
  now: string;
  timeZone: string;
  rule: Retention;
  backups: BackupJson[];
  expected?: RetentionDecision[];
}

const toInput = (b: BackupJson): RetentionInput => ({ ...b, completionTime: new Date(b.completionTime) });
const toJson = (b: RetentionInput): BackupJson => ({ ...b, completionTime: b.completionTime.toISOString() });

/** Writes a golden file formatted as `npm run lint` wants it (biome folds short arrays onto one line). */
function writeJson(path: string, value: unknown) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  const biome = spawnSync(join(repoRoot, 'node_modules', '.bin', 'biome'), ['format', '--write', path], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(biome.status, 0, `biome format ${path}: ${biome.stderr}`);
}

/** Compares `actual` with the golden file, or rewrites it when UPDATE_GOLDEN=1. */
function golden(file: string, actual: unknown) {
  const path = join(testdata, file);
  if (update) {
    writeJson(path, actual);
    return;
  }
  const expected = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(
    JSON.parse(JSON.stringify(actual)),
    expected,
    `${file} differs from the code; if the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff`,
  );
}

const names = (decisions: RetentionDecision[], keep: boolean) =>
  decisions.filter((d) => d.keep === keep).map((d) => d.name);

for (const file of readdirSync(testdata).filter((f) => f.endsWith('.json'))) {
  test(`golden ${file}`, () => {
    const golden: GoldenCase = JSON.parse(readFileSync(join(testdata, file), 'utf8'));
    const { expected, ...input } = golden;
    const actual = applyRetention(input.backups.map(toInput), input.rule, new Date(input.now), input.timeZone);
    if (update) {
      writeJson(join(testdata, file), { ...input, expected: actual });
      return;
    }
    assert.ok(expected, `${file} has no expected decisions; run with UPDATE_GOLDEN=1`);
    assert.deepEqual(actual, expected, `${file} differs; if intended, rerun with UPDATE_GOLDEN=1 and review the diff`);
  });
}

// --- Simulations ---------------------------------------------------------------------------------

const DAY = 86_400_000;
const stamp = (d: Date) => d.toISOString().slice(0, 16).replace(/[-:T]/g, '');

/** A nightly schedule: a full backup every `fullEvery` days, incrementals between, finishing 10 min after 02:00Z. */
function nightly(start: string, day: number, fullEvery: number): RetentionInput {
  const scheduled = new Date(Date.parse(start) + day * DAY);
  return {
    name: `nightly-app-${stamp(scheduled)}`,
    type: day % fullEvery === 0 ? 'full' : 'incremental',
    chainId: `chain-${Math.floor(day / fullEvery)}`,
    completionTime: new Date(scheduled.getTime() + 10 * 60_000),
    phase: 'Succeeded',
  };
}

test('simulation: keepLastFull 3, weekly fulls and daily incrementals, retention after each backup for 30 days', () => {
  // What the operator does: after each successful backup, decide and delete what is removed.
  const rule: Retention = { keepLastFull: 3 };
  const start = '2026-11-01T02:00:00Z';
  let present: RetentionInput[] = [];
  const days = [];
  for (let day = 0; day < 30; day++) {
    const created = nightly(start, day, 7);
    present = [...present, created];
    const now = new Date(created.completionTime.getTime() + 60_000);
    const decisions = applyRetention(present, rule, now);
    present = present.filter((_, i) => decisions[i]?.keep);
    days.push({ day, now: now.toISOString(), created: toJson(created), decisions, kept: names(decisions, true) });

    // Invariants every day: 3 fulls at most, and the current chain complete.
    const fulls = present.filter((b) => b.type === 'full');
    assert.equal(fulls.length, Math.min(3, Math.floor(day / 7) + 1), `day ${day}: fulls kept`);
    const current = fulls.at(-1)?.chainId;
    assert.equal(
      present.filter((b) => b.type === 'incremental').every((b) => b.chainId === current),
      true,
      `day ${day}: only the current chain keeps incrementals`,
    );
    assert.equal(present.filter((b) => b.chainId === current).length, (day % 7) + 1, `day ${day}: current chain`);
  }
  golden('simulation/keep-last-full-3-30-days.json', {
    description:
      'Nightly at 02:00Z from 2026-11-01 (a Sunday), done at 02:10Z: full on days 0, 7, 14, 21, 28, incremental otherwise. Retention runs one minute after each backup; removed backups are gone the next day. kept lists what remains after each day.',
    rule,
    timeZone: 'UTC',
    days,
  });
  assert.deepEqual(
    present.map((b) => b.name),
    ['nightly-app-202611150200', 'nightly-app-202611220200', 'nightly-app-202611290200', 'nightly-app-202611300200'],
  );
});

test('simulation: GFS daily 7, weekly 5, monthly 12 over a year in Europe/Berlin, with a two-week outage', () => {
  const rule: Retention = { keepLastFull: 2, keepDaily: 7, keepWeekly: 5, keepMonthly: 12 };
  const timeZone = 'Europe/Berlin';
  const start = '2025-11-30T02:00:00Z'; // a Sunday: fulls every Sunday
  const now = new Date('2026-11-30T12:00:00Z');
  const backups: RetentionInput[] = [];
  for (let day = 0; day <= 365; day++) {
    const nightlyRun = nightly(start, day, 7);
    const date = nightlyRun.completionTime.toISOString().slice(0, 10);
    if (date >= '2026-11-02' && date <= '2026-11-15') continue; // outage: no backups in weeks 45 and 46
    backups.push(nightlyRun);
    if (date.endsWith('-26')) {
      // `backup now` (an incremental of the current chain) on the 26th of each month at 15:05Z: the newest of its day.
      backups.push({
        name: `ondemand-app-${date.replace(/-/g, '')}1505`,
        type: 'incremental',
        chainId: nightlyRun.chainId,
        completionTime: new Date(`${date}T15:05:00Z`),
        phase: 'Succeeded',
      });
    }
  }
  const decisions = applyRetention(backups, rule, now, timeZone);
  golden('simulation/gfs-one-year.json', {
    description:
      'Nightly at 02:00Z from 2025-11-30 to 2026-11-30 (full on Sundays, incremental otherwise), plus an on-demand incremental at 15:05Z on the 26th of each month; no backups 2026-11-02..15 (ISO weeks 45, 46), so keepWeekly reaches back to week 43. Retention once, at now.',
    rule,
    timeZone,
    now: now.toISOString(),
    kept: names(decisions, true),
    decisions,
  });
  const kept = decisions.filter((d) => d.keep);
  const count = (prefix: string) => kept.filter((d) => d.reasons.some((r) => r.startsWith(prefix))).length;
  assert.equal(count('last backup of day'), 7);
  assert.equal(count('last backup of week'), 5);
  assert.equal(count('last backup of month'), 12);
  assert.ok(
    kept.some((d) => d.name === 'ondemand-app-202611261505'),
    'the newest backup of its day wins',
  );
  assert.ok(
    kept.some((d) => d.reasons.includes('last backup of week 2026-W43 (keepWeekly 5)')),
    'weeks without a backup do not count',
  );
  assert.ok(decisions.every((d) => d.reasons.length > 0));
});

// --- Rules, one at a time ------------------------------------------------------------------------

const at = (iso: string) => new Date(iso);
const ok = (name: string, type: 'full' | 'incremental', chainId: string, time: string): RetentionInput => ({
  name,
  type,
  chainId,
  completionTime: at(time),
  phase: 'Succeeded',
});
const failed = (name: string, time: string): RetentionInput => ({
  ...ok(name, 'incremental', 'c', time),
  phase: 'Failed',
});

test('output order is input order, and shuffling the input changes no decision', () => {
  const backups = [
    ok('f1', 'full', 'a', '2026-11-01T02:00:00Z'),
    ok('i1', 'incremental', 'a', '2026-11-02T02:00:00Z'),
    ok('f2', 'full', 'b', '2026-11-03T02:00:00Z'),
    failed('x1', '2026-11-03T12:00:00Z'),
    ok('i2', 'incremental', 'b', '2026-11-04T02:00:00Z'),
    ok('f3', 'full', 'c', '2026-11-05T02:00:00Z'),
  ];
  const rule = { keepLastFull: 2, keepDaily: 2 };
  const now = at('2026-11-10T00:00:00Z');
  const straight = applyRetention(backups, rule, now);
  assert.deepEqual(
    straight.map((d) => d.name),
    backups.map((b) => b.name),
  );
  const reversed = applyRetention([...backups].reverse(), rule, now);
  assert.deepEqual([...reversed].reverse(), straight);
});

test('equal completion times are ordered by name, so the choice is deterministic', () => {
  const backups = [ok('b', 'full', 'b', '2026-11-01T02:00:00Z'), ok('a', 'full', 'a', '2026-11-01T02:00:00Z')];
  for (const input of [backups, [...backups].reverse()]) {
    const decisions = applyRetention(input, { keepLastFull: 1 }, at('2026-11-02T00:00:00Z'));
    assert.deepEqual(names(decisions, true), ['b']);
  }
});

test('keepLastFull defaults to 7 and counts only succeeded fulls', () => {
  const backups = Array.from({ length: 9 }, (_, i) => ok(`f${i}`, 'full', `c${i}`, `2026-11-0${i + 1}T02:00:00Z`));
  backups.push({ ...ok('failed-full', 'full', 'x', '2026-11-09T12:00:00Z'), phase: 'Failed' });
  const decisions = applyRetention(backups, {}, at('2026-11-09T13:00:00Z'));
  assert.deepEqual(names(decisions, false), ['f0', 'f1']);
  assert.deepEqual(decisions[1]?.reasons, ['beyond keepLastFull 7 (#8)']);
  assert.deepEqual(decisions[8]?.reasons, ['newest 7 full backups (#1)', 'newest successful backup']);
});

test('incrementals of an older full that keepLastFull keeps are removed unless GFS keeps them', () => {
  const backups = [
    ok('f1', 'full', 'a', '2026-11-01T02:00:00Z'),
    ok('i1', 'incremental', 'a', '2026-11-02T02:00:00Z'),
    ok('i2', 'incremental', 'a', '2026-11-02T03:00:00Z'),
    ok('f2', 'full', 'b', '2026-11-03T02:00:00Z'),
  ];
  const now = at('2026-11-04T00:00:00Z');
  assert.deepEqual(names(applyRetention(backups, { keepLastFull: 2 }, now), false), ['i1', 'i2']);
  const gfs = applyRetention(backups, { keepLastFull: 2, keepDaily: 3 }, now);
  assert.deepEqual(names(gfs, false), ['i1']);
  assert.deepEqual(gfs[2]?.reasons, ['last backup of day 2026-11-02 (keepDaily 3)']);
  assert.deepEqual(gfs[1]?.reasons, ['superseded: a newer full backup started a new chain']);
});

test('boundaries: exactly maxAge old stays, a millisecond more goes; a failure exactly 24h old stays', () => {
  const backups = [
    ok('f1', 'full', 'a', '2026-11-01T00:00:00Z'),
    failed('x1', '2026-11-01T12:00:00Z'),
    ok('f2', 'full', 'b', '2026-11-02T00:00:00Z'),
  ];
  const rule = { keepLastFull: 2, maxAge: '1d12h' };
  const exact = at('2026-11-02T12:00:00Z');
  assert.equal(exact.getTime() - (backups[1]?.completionTime.getTime() ?? 0), FAILED_GRACE_MS);
  assert.deepEqual(names(applyRetention(backups, rule, exact), false), []);
  const later = new Date(exact.getTime() + 1);
  assert.deepEqual(names(applyRetention(backups, rule, later), false), ['f1', 'x1']);
});

test('maxAge parses every unit of the manifest grammar', () => {
  const backups = [ok('old', 'full', 'a', '2026-01-01T00:00:00Z'), ok('new', 'full', 'b', '2026-11-01T00:00:00Z')];
  const start = at('2026-01-01T00:00:00Z').getTime();
  const age = 2 * 7 * DAY + 3 * DAY + 4 * 3_600_000 + 5 * 60_000 + 6_000;
  const keptAt = (ms: number) => applyRetention(backups, { keepLastFull: 2, maxAge: '2w3d4h5m6s' }, new Date(ms));
  assert.equal(keptAt(start + age)[0]?.keep, true);
  assert.equal(keptAt(start + age + 1)[0]?.keep, false);
  assert.deepEqual(keptAt(start + age + 1)[0]?.reasons, ['older than maxAge 2w3d4h5m6s']);
});

test('an empty list gives no decisions', () => {
  assert.deepEqual(applyRetention([], { keepLastFull: 1 }, at('2026-11-01T00:00:00Z')), []);
});

test('bad input is InvalidArgument: unknown time zone, malformed maxAge, invalid date', () => {
  const backups = [ok('f1', 'full', 'a', '2026-11-01T00:00:00Z')];
  const now = at('2026-11-02T00:00:00Z');
  const invalid = (e: unknown) => isCode(e, 'InvalidArgument');
  assert.throws(() => applyRetention(backups, { keepDaily: 1 }, now, 'Mars/Olympus'), invalid);
  assert.throws(() => applyRetention(backups, { maxAge: '90 days' }, now), invalid);
  assert.throws(() => applyRetention([ok('f', 'full', 'a', 'not a date')], {}, now), invalid);
  assert.throws(() => applyRetention(backups, {}, new Date(Number.NaN)), invalid);
});

test('ISO weeks: Monday starts a week, week 1 holds the first Thursday, 2026 has 53 weeks', () => {
  const cases: [string, string][] = [
    ['2026-11-22', '2026-W47'], // Sunday
    ['2026-11-23', '2026-W48'], // Monday
    ['2026-01-01', '2026-W01'], // Thursday
    ['2026-12-31', '2026-W53'],
    ['2027-01-03', '2026-W53'], // Sunday
    ['2027-01-04', '2027-W01'],
    ['2024-12-30', '2025-W01'],
    ['2021-01-03', '2020-W53'],
  ];
  for (const [date, week] of cases) {
    const [year, month, day] = date.split('-').map(Number) as [number, number, number];
    assert.equal(isoWeek({ year, month, day }), week, date);
  }
});

test('invariant: whatever the input, the newest succeeded backup and the newest full stay, and every decision has a reason', () => {
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 300; round++) {
    const backups: RetentionInput[] = [];
    let chain = 0;
    const count = 1 + Math.floor(random() * 40);
    for (let i = 0; i < count; i++) {
      const full = random() < 0.25;
      if (full) chain++;
      backups.push({
        name: `b${i}`,
        type: full ? 'full' : 'incremental',
        chainId: `c${chain}`,
        completionTime: new Date(Date.parse('2026-01-01T00:00:00Z') + Math.floor(random() * 300 * DAY)),
        phase: random() < 0.2 ? 'Failed' : 'Succeeded',
      });
    }
    const rule: Retention = {
      keepLastFull: 1 + Math.floor(random() * 4),
      keepDaily: Math.floor(random() * 5),
      keepWeekly: Math.floor(random() * 3),
      maxAge: random() < 0.5 ? `${1 + Math.floor(random() * 60)}d` : undefined,
    };
    const decisions = applyRetention(backups, rule, at('2026-11-01T00:00:00Z'), 'Europe/Berlin');
    const newest = (list: RetentionInput[]) =>
      list.reduce<RetentionInput | undefined>(
        (a, b) =>
          !a ||
          b.completionTime > a.completionTime ||
          (b.completionTime.getTime() === a.completionTime.getTime() && b.name > a.name)
            ? b
            : a,
        undefined,
      );
    const succeeded = backups.filter((b) => b.phase === 'Succeeded');
    for (const must of [newest(succeeded), newest(succeeded.filter((b) => b.type === 'full'))]) {
      if (must) assert.equal(decisions[backups.indexOf(must)]?.keep, true, `round ${round}: ${must.name}`);
    }
    assert.ok(decisions.every((d) => d.reasons.length > 0));
  }
});

// --- Which rule applies to which repository ------------------------------------------------------

const policy = (retention?: Retention, replicaRetention?: Retention): BackupPolicySpec => ({
  sources: [{ name: 'app', postgres: { connectionSecret: { name: 'pg' }, databases: ['app'] } }],
  schedule: { full: { cron: '0 2 * * 0' } },
  repository: 'primary',
  replicas: [
    { repository: 'far', region: 'eu-north', ...(replicaRetention ? { retention: replicaRetention } : {}) },
    { repository: 'near', region: 'eu-west' },
  ],
  ...(retention ? { retention } : {}),
});

test('retentionForRepository: keepLastFull 7 only when the rule sets nothing; a rule gets what it says', () => {
  assert.deepEqual(retentionForRepository(policy(), 'primary'), { keepLastFull: 7 });
  assert.deepEqual(retentionForRepository(policy({}), 'primary'), { keepLastFull: 7 });
  assert.deepEqual(retentionForRepository(policy({ keepDaily: 7, maxAge: '90d' }), 'primary'), {
    keepDaily: 7,
    maxAge: '90d',
  });
  assert.deepEqual(retentionForRepository(policy({ maxAge: '30d' }), 'primary'), { maxAge: '30d' });
});

test("retentionForRepository: a replica gets its own retention as a whole, else the primary's", () => {
  const spec = policy({ keepLastFull: 3, keepDaily: 7 }, { keepMonthly: 12 });
  assert.deepEqual(retentionForRepository(spec, 'far'), { keepMonthly: 12 });
  assert.deepEqual(retentionForRepository(spec, 'near'), { keepLastFull: 3, keepDaily: 7 });
});

test('retentionForRepository: a repository the policy does not name is InvalidArgument', () => {
  assert.throws(
    () => retentionForRepository(policy(), 'elsewhere'),
    (e) => isCode(e, 'InvalidArgument'),
  );
});

const daily = (count: number, from: string, phase: 'Succeeded' | 'Failed' = 'Succeeded'): RetentionInput[] =>
  Array.from({ length: count }, (_, i) => ({
    name: `b${String(i).padStart(2, '0')}`,
    type: 'full' as const,
    chainId: `c${i}`,
    completionTime: new Date(at(from).getTime() + i * 86_400_000),
    phase,
  }));

test('maxAge alone keeps every backup younger than maxAge, not 7', () => {
  // 40 daily fulls, the newest one day before now: the 30 youngest are within 30d.
  const backups = daily(40, '2026-09-23T02:00:00Z');
  const decisions = applyRetention(backups, { maxAge: '30d' }, at('2026-11-02T01:00:00Z'));
  assert.deepEqual(
    names(decisions, true),
    backups.slice(10).map((b) => b.name),
  );
  assert.deepEqual(decisions[10]?.reasons, ['younger than maxAge 30d']);
  assert.deepEqual(decisions[9]?.reasons, ['older than maxAge 30d', 'kept by no rule']);
  assert.ok(decisions[39]?.reasons.includes('newest full backup'));
});

test('with a count rule maxAge is only an upper bound', () => {
  const backups = daily(40, '2026-09-23T02:00:00Z');
  const decisions = applyRetention(backups, { keepLastFull: 3, maxAge: '30d' }, at('2026-11-02T01:00:00Z'));
  assert.deepEqual(names(decisions, true), ['b37', 'b38', 'b39']);
});

test('a GFS rule alone does not silently keep 7 fulls', () => {
  // Two fulls a day for 10 days: keepDaily 3 keeps the last of each of the 3 newest days.
  const backups = daily(20, '2026-10-20T02:00:00Z').map((b, i) => ({
    ...b,
    completionTime: new Date(
      at('2026-10-20T02:00:00Z').getTime() + Math.floor(i / 2) * 86_400_000 + (i % 2) * 3600_000,
    ),
  }));
  const decisions = applyRetention(backups, { keepDaily: 3 }, at('2026-11-02T03:00:00Z'));
  assert.deepEqual(names(decisions, true), ['b15', 'b17', 'b19']);
});

test('failed backups are bounded to the newest 3 even while nothing succeeds', () => {
  const backups = daily(6, '2026-10-27T02:00:00Z', 'Failed');
  const decisions = applyRetention(backups, {}, at('2026-11-02T03:00:00Z'));
  assert.deepEqual(names(decisions, true), ['b03', 'b04', 'b05']);
  assert.deepEqual(decisions[2]?.reasons, ['beyond the newest 3 failed backups (#4)']);
  assert.deepEqual(decisions[5]?.reasons, ['failed and no newer backup has succeeded yet']);
});
