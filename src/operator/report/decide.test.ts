// The daily report without a cluster: which runs a day holds, in which time zone, what survives
// retention, how the lists are bounded, what reports are named and how long they are kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REPORT_LIMITS } from '../../api/backupreport.ts';
import type { Backup, BackupPolicy, BackupReport } from '../../api/kinds.ts';
import { decideReports, REPORT_PHASE_LABEL, type ReportDecision, reportName, reportStub, shares } from './decide.ts';

const ns = 'tenants';

function policy(extra: Partial<BackupPolicy['spec']> = {}, name = 'nightly'): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name, namespace: ns, uid: 'uid-policy' },
    spec: {
      sources: [
        { name: 'db', postgres: { connectionSecret: { name: 'pg' }, databases: ['app'] } },
        { name: 'files', volume: { claimName: 'documents' } },
      ],
      schedule: { full: { every: '1h' } },
      repository: 'primary',
      ...extra,
    },
  };
}

interface RunOptions {
  source?: string;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  end?: string;
  objects?: { name: string; records: number }[];
  skipped?: { name: string; reason: string }[];
  error?: string;
  bytes?: number;
}

function backup(name: string, start: string, o: RunOptions = {}): Backup {
  const phase = o.phase ?? 'Succeeded';
  const bytes = o.bytes ?? 1000;
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: ns, creationTimestamp: start },
    spec: { policy: 'nightly', source: o.source ?? 'db', type: 'full' },
    status: {
      phase,
      startTime: start,
      ...(phase === 'Succeeded' || phase === 'Failed'
        ? { completionTime: o.end ?? new Date(Date.parse(start) + 60_000).toISOString() }
        : {}),
      ...(phase === 'Succeeded'
        ? {
            logicalBytes: bytes,
            storedBytes: bytes * 2,
            uploadedBytes: bytes / 10,
            objects: o.objects ?? [{ name: 'public.orders', records: 10 }],
          }
        : {}),
      ...(o.skipped ? { skipped: o.skipped } : {}),
      ...(phase === 'Failed' ? { error: o.error ?? 'connection refused' } : {}),
    },
  };
}

const decide = (p: BackupPolicy, backups: Backup[], now: string, reports: BackupReport[] = []): ReportDecision =>
  decideReports({ policy: p, backups, reports, now: new Date(now) });

const written = (d: ReportDecision, date: string) => {
  const report = d.write.find((r) => r.spec.date === date);
  assert.ok(report, `a report for ${date}; written: ${d.write.map((r) => r.spec.date).join(', ')}`);
  return report;
};

const names = (r: BackupReport) => (r.status?.backups ?? []).map((b) => b.backup);

describe('decideReports: which runs a day holds', () => {
  test('a run belongs to the day it started: 23:59:59 is the old day, midnight the new one', () => {
    const backups = [
      backup('late', '2026-12-01T23:59:59Z', { end: '2026-12-02T00:10:00Z' }),
      backup('midnight', '2026-12-02T00:00:00Z'),
    ];
    const d = decide(policy(), backups, '2026-12-02T10:00:00Z');
    const yesterday = written(d, '2026-12-01');
    const today = written(d, '2026-12-02');
    assert.deepEqual(names(yesterday), ['late']);
    assert.deepEqual(names(today), ['midnight']);
    assert.equal(yesterday.metadata.name, 'nightly-2026-12-01');
    assert.equal(yesterday.status?.start, '2026-12-01T00:00:00.000Z');
    assert.equal(yesterday.status?.end, '2026-12-02T00:00:00.000Z');
    assert.equal(yesterday.status?.phase, 'Final', 'the day is over and its run ended');
    assert.equal(today.status?.phase, 'Open');
    assert.deepEqual(yesterday.metadata.ownerReferences?.[0]?.uid, 'uid-policy');
    assert.equal(d.requeueAfterMs, 14 * 3600_000 + 1000, 'the daily tick: just after midnight');
    assert.deepEqual(
      [...d.events],
      [
        [
          'nightly-2026-12-01',
          {
            type: 'Normal',
            reason: 'DailyReport',
            message: '2026-12-01 (UTC): 1 run, 1 succeeded, 0 failed; see BackupReport nightly-2026-12-01',
          },
        ],
      ],
    );
  });

  test('a day that is over stays Open while a run that started in it has not ended', () => {
    const d = decide(policy(), [backup('slow', '2026-12-01T23:00:00Z', { phase: 'Running' })], '2026-12-02T01:00:00Z');
    const report = written(d, '2026-12-01');
    assert.equal(report.status?.phase, 'Open');
    assert.equal(report.status?.running, 1);
  });

  test('a Final report is left alone; a past day without runs gets no report; today always does', () => {
    const final = decide(policy(), [backup('a', '2026-12-01T05:00:00Z')], '2026-12-02T10:00:00Z').write.find(
      (r) => r.spec.date === '2026-12-01',
    ) as BackupReport;
    assert.equal(final.metadata.labels?.[REPORT_PHASE_LABEL], 'Final');
    assert.equal(final.metadata.labels?.['tidemark.dev/policy'], 'nightly');
    const stub = reportStub(final);
    assert.equal(stub.status?.backups, undefined, 'the operator keeps no runs of a Final report in memory');
    const d = decide(policy(), [backup('a', '2026-12-01T05:00:00Z')], '2026-12-03T10:00:00Z', [stub]);
    assert.deepEqual(
      d.write.map((r) => r.spec.date),
      ['2026-12-03'],
    );
    const empty = written(d, '2026-12-03');
    assert.equal(empty.status?.runs, 0);
    assert.equal(empty.metadata.labels?.[REPORT_PHASE_LABEL], 'Open');
    assert.deepEqual(
      empty.status?.sources?.map((s) => [s.name, s.runs]),
      [
        ['db', 0],
        ['files', 0],
      ],
    );
  });

  test("the policy's time zone: days start at local midnight, also across a DST change", () => {
    const berlin = policy({ schedule: { full: { every: '1h' }, timeZone: 'Europe/Berlin' } });
    const d = decide(berlin, [backup('b', '2026-12-01T23:30:00Z')], '2026-12-02T08:00:00Z');
    const report = written(d, '2026-12-02');
    assert.deepEqual(names(report), ['b'], '00:30 in Berlin');
    assert.equal(report.spec.timeZone, 'Europe/Berlin');
    assert.equal(report.status?.start, '2026-12-01T23:00:00.000Z');
    assert.equal(d.write.length, 1);

    const york = policy({ schedule: { full: { every: '1h' }, timeZone: 'America/New_York' } });
    const spring = written(decide(york, [], '2026-03-08T12:00:00Z'), '2026-03-08');
    assert.equal(spring.status?.start, '2026-03-08T05:00:00.000Z');
    assert.equal(spring.status?.end, '2026-03-09T04:00:00.000Z', '23 hours');
  });

  test('an unknown time zone counts days in UTC', () => {
    const odd = policy({ schedule: { full: { every: '1h' }, timeZone: 'Mars/Olympus' } });
    assert.equal(written(decide(odd, [], '2026-12-02T08:00:00Z'), '2026-12-02').spec.timeZone, 'UTC');
  });
});

describe('decideReports: what a report says', () => {
  test('per source and in total: runs, outcomes with reasons, bytes of the successes, skipped objects', () => {
    const backups = [
      backup('db-1', '2026-12-02T01:00:00Z', { bytes: 1000 }),
      backup('db-2', '2026-12-02T02:00:00Z', { phase: 'Failed', error: 'pg_dump: connection refused' }),
      backup('files-1', '2026-12-02T01:00:00Z', {
        source: 'files',
        bytes: 500,
        objects: [{ name: '.', records: 3 }],
        skipped: [{ name: 'locked.db', reason: 'permission denied' }],
      }),
    ];
    const report = written(decide(policy(), backups, '2026-12-02T10:00:00Z'), '2026-12-02');
    const s = report.status;
    assert.deepEqual([s?.runs, s?.succeeded, s?.failed, s?.running], [3, 2, 1, 0]);
    const final = decide(policy(), backups, '2026-12-03T00:00:01Z').events.get('nightly-2026-12-02');
    assert.equal(final?.type, 'Warning');
    assert.match(final?.message ?? '', /3 runs, 2 succeeded, 1 failed, 1 object not backed up/);
    assert.deepEqual([s?.logicalBytes, s?.storedBytes, s?.uploadedBytes], [1500, 3000, 150]);
    const db = s?.sources?.find((x) => x.name === 'db');
    assert.deepEqual([db?.runs, db?.succeeded, db?.failed, db?.lastSuccessfulBackup], [2, 1, 1, 'db-1']);
    assert.deepEqual(db?.objects, [{ name: 'public.orders', records: 10 }]);
    assert.equal(s?.backups?.find((b) => b.backup === 'db-2')?.error, 'pg_dump: connection refused');
    const files = s?.sources?.find((x) => x.name === 'files');
    assert.deepEqual(files?.skipped, [{ name: 'locked.db', reason: 'permission denied' }]);
    assert.equal(s?.backups?.find((b) => b.backup === 'files-1')?.skipped, 1);
  });

  test('record counts come from the newest success of the day, with the change against the day before', () => {
    const backups = [
      backup('mon', '2026-12-01T01:00:00Z', { objects: [{ name: 't', records: 100 }] }),
      backup('tue-1', '2026-12-02T01:00:00Z', {
        objects: [
          { name: 't', records: 50 },
          { name: 'u', records: 1 },
        ],
      }),
      backup('tue-2', '2026-12-02T05:00:00Z', {
        objects: [
          { name: 't', records: 120 },
          { name: 'u', records: 2 },
        ],
      }),
    ];
    const d = decide(policy(), backups, '2026-12-02T10:00:00Z');
    const db = written(d, '2026-12-02').status?.sources?.find((s) => s.name === 'db');
    assert.equal(db?.lastSuccessfulBackup, 'tue-2');
    assert.equal(db?.comparedWith, 'mon');
    assert.deepEqual(db?.objects, [
      { name: 't', records: 120, change: 20 },
      { name: 'u', records: 2 },
    ]);
    assert.deepEqual([db?.objectCount, db?.records], [2, 122]);

    // Monday's Backup removed by retention: Monday's report is the baseline.
    const monday = reportStub(written(d, '2026-12-01'));
    const later = decide(policy(), backups.slice(1), '2026-12-02T11:00:00Z', [monday]);
    const again = written(later, '2026-12-02').status?.sources?.find((s) => s.name === 'db');
    assert.equal(again?.comparedWith, 'mon');
    assert.equal(again?.objects?.[0]?.change, 20);
  });

  test('record counts the cache leaves out are asked of objectsOf, for the newest success and its baseline only', () => {
    const counts = new Map([
      ['mon', [{ name: 't', records: 100 }]],
      ['tue-2', [{ name: 't', records: 120 }]],
    ]);
    const slim = (name: string, start: string) => {
      const b = backup(name, start);
      delete b.status?.objects;
      return b;
    };
    const backups = [
      slim('sun', '2026-11-30T01:00:00Z'),
      slim('mon', '2026-12-01T01:00:00Z'),
      slim('tue-1', '2026-12-02T01:00:00Z'),
      slim('tue-2', '2026-12-02T05:00:00Z'),
    ];
    const asked: string[] = [];
    const d = decideReports({
      policy: policy(),
      backups,
      reports: [],
      now: new Date('2026-12-02T10:00:00Z'),
      objectsOf: (b) => {
        asked.push(b.metadata.name ?? '');
        return counts.get(b.metadata.name ?? '');
      },
    });
    const db = written(d, '2026-12-02').status?.sources?.find((s) => s.name === 'db');
    assert.deepEqual(db?.objects, [{ name: 't', records: 120, change: 20 }]);
    assert.equal(db?.comparedWith, 'mon');
    assert.ok(!asked.includes('tue-1'), `asked for ${asked.join(', ')}`);
  });

  test('a Backup removed by retention stays in the report as it was seen, counts and bytes included', () => {
    const backups = [
      backup('db-1', '2026-12-02T01:00:00Z', { objects: [{ name: 't', records: 7 }] }),
      backup('db-2', '2026-12-02T02:00:00Z', { phase: 'Failed' }),
    ];
    const first = written(decide(policy(), backups, '2026-12-02T10:00:00Z'), '2026-12-02');
    const after = written(decide(policy(), [], '2026-12-02T11:00:00Z', [first]), '2026-12-02');
    assert.deepEqual(names(after), ['db-1', 'db-2']);
    assert.ok(after.status?.backups?.every((b) => b.removed === true));
    assert.deepEqual([after.status?.runs, after.status?.succeeded, after.status?.failed], [2, 1, 1]);
    assert.equal(after.status?.logicalBytes, first.status?.logicalBytes);
    const db = after.status?.sources?.find((s) => s.name === 'db');
    assert.deepEqual(db?.objects, [{ name: 't', records: 7 }]);
    assert.equal(db?.lastSuccessfulBackup, 'db-1');
    assert.equal(after.metadata.name, first.metadata.name);
  });

  test('a run whose Backup was deleted before it ended counts as failed, and does not hold the day open', () => {
    const first = written(
      decide(policy(), [backup('gone', '2026-12-01T23:00:00Z', { phase: 'Running' })], '2026-12-01T23:30:00Z'),
      '2026-12-01',
    );
    const d = decide(policy(), [], '2026-12-02T00:30:00Z', [first]);
    const after = written(d, '2026-12-01');
    assert.deepEqual(after.status?.backups?.[0], {
      ...first.status?.backups?.[0],
      phase: 'Failed',
      removed: true,
      error: 'the Backup was deleted before its run ended',
    });
    assert.deepEqual([after.status?.failed, after.status?.running, after.status?.phase], [1, 0, 'Final']);
  });

  test('a run that moved to another day (it waited past midnight) leaves the day it was created in', () => {
    const waiting = backup('w', '2026-12-01T23:59:00Z', { phase: 'Pending' });
    delete waiting.status?.startTime;
    const before = written(decide(policy(), [waiting], '2026-12-01T23:59:30Z'), '2026-12-01');
    assert.deepEqual(names(before), ['w']);
    const started = backup('w', '2026-12-02T00:01:00Z', { phase: 'Running' });
    started.metadata.creationTimestamp = '2026-12-01T23:59:00Z';
    const d = decide(policy(), [started], '2026-12-02T00:02:00Z', [before]);
    assert.deepEqual(names(written(d, '2026-12-01')), []);
    assert.equal(written(d, '2026-12-01').status?.phase, 'Final');
    assert.deepEqual(names(written(d, '2026-12-02')), ['w']);
  });

  test('unchanged content keeps its updateTime (no write), a change moves it', () => {
    const backups = [backup('a', '2026-12-02T01:00:00Z')];
    const first = written(decide(policy(), backups, '2026-12-02T10:00:00Z'), '2026-12-02');
    const same = written(decide(policy(), backups, '2026-12-02T10:05:00Z', [first]), '2026-12-02');
    assert.equal(same.status?.updateTime, '2026-12-02T10:00:00.000Z');
    const more = [...backups, backup('b', '2026-12-02T10:01:00Z', { phase: 'Running' })];
    const moved = written(decide(policy(), more, '2026-12-02T10:06:00Z', [first]), '2026-12-02');
    assert.equal(moved.status?.updateTime, '2026-12-02T10:06:00.000Z');
  });
});

describe('decideReports: bounds, names and retention', () => {
  test('runs beyond the limit: every failure kept, then the newest; the counts stay complete', () => {
    const total = REPORT_LIMITS.runs + 50;
    const backups = Array.from({ length: total }, (_, i) =>
      backup(
        `r-${String(i).padStart(3, '0')}`,
        new Date(Date.parse('2026-12-02T00:00:00Z') + i * 60_000).toISOString(),
        {
          phase: i < 3 ? 'Failed' : 'Succeeded',
        },
      ),
    );
    const s = written(decide(policy(), backups, '2026-12-02T23:00:00Z'), '2026-12-02').status;
    assert.equal(s?.runs, total);
    assert.equal(s?.failed, 3);
    assert.equal(s?.backups?.length, REPORT_LIMITS.runs);
    assert.equal(s?.runsOmitted, 50);
    assert.deepEqual(
      s?.backups?.slice(0, 4).map((b) => b.backup),
      ['r-000', 'r-001', 'r-002', 'r-053'],
    );
  });

  test('object and skipped lists share one budget across sources; changed counts are kept first', () => {
    const many = Array.from({ length: 800 }, (_, i) => ({ name: `t${String(i).padStart(3, '0')}`, records: i }));
    const changed = many.map((o) => (o.name === 't001' ? { ...o, records: 5000 } : o));
    const skipped = Array.from({ length: 150 }, (_, i) => ({ name: `f${i}`, reason: 'x'.repeat(2000) }));
    const backups = [
      backup('db-mon', '2026-12-01T01:00:00Z', { objects: many }),
      backup('db-tue', '2026-12-02T01:00:00Z', { objects: changed }),
      backup('files-tue', '2026-12-02T01:00:00Z', {
        source: 'files',
        objects: many.slice(0, 50),
        skipped,
      }),
    ];
    const s = written(decide(policy(), backups, '2026-12-02T10:00:00Z'), '2026-12-02').status;
    const db = s?.sources?.find((x) => x.name === 'db');
    const files = s?.sources?.find((x) => x.name === 'files');
    assert.equal(files?.objects?.length, 50);
    assert.equal(db?.objects?.length, REPORT_LIMITS.objects - 50);
    assert.equal(db?.objectsOmitted, 800 - (REPORT_LIMITS.objects - 50));
    assert.equal(db?.objectCount, 800, 'the totals count every object');
    assert.ok(
      db?.objects?.some((o) => o.name === 't001' && o.change === 4999),
      'the changed table is kept',
    );
    assert.equal(files?.skipped?.length, REPORT_LIMITS.skipped);
    assert.equal(files?.skippedOmitted, 50);
    assert.ok(files?.skipped?.every((x) => x.reason.length <= REPORT_LIMITS.reason));
    assert.ok(JSON.stringify(s).length < 1024 * 1024, 'well inside what etcd holds');
  });

  test('shares: equal shares, what a small one leaves goes to the others', () => {
    assert.deepEqual(shares([10, 1000, 1000], 500), [10, 245, 245]);
    assert.deepEqual(shares([1, 2], 500), [1, 2]);
    assert.deepEqual(shares([], 500), []);
  });

  test('names: <policy>-<date>; a long policy name is cut and made unique by its hash', () => {
    assert.equal(reportName('nightly', '2026-12-01'), 'nightly-2026-12-01');
    const a = `${'a'.repeat(240)}-one`;
    const b = `${'a'.repeat(240)}-two`;
    const [na, nb] = [reportName(a, '2026-12-01'), reportName(b, '2026-12-01')];
    assert.ok(na.length <= 253 && nb.length <= 253);
    assert.notEqual(na, nb);
    assert.match(na, /^a+-[0-9a-f]{8}-2026-12-01$/);
    assert.equal(reportName('x'.repeat(242), '2026-12-01').length, 253, 'one that fits is kept whole');
    const p = policy({}, a);
    assert.equal(written(decide(p, [], '2026-12-01T10:00:00Z'), '2026-12-01').metadata.name, na);
  });

  test('reports older than keepDays are deleted (default 14 days)', () => {
    const report = (date: string): BackupReport => ({
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupReport',
      metadata: { name: `nightly-${date}`, namespace: ns },
      spec: { policy: 'nightly', date, timeZone: 'UTC' },
      status: { phase: 'Final', runs: 0, succeeded: 0, failed: 0, running: 0 },
    });
    const reports = ['2026-11-17', '2026-11-18', '2026-11-19', '2026-11-30', '2026-12-01'].map(report);
    assert.deepEqual(decide(policy(), [], '2026-12-01T10:00:00Z', reports).delete, ['nightly-2026-11-17']);
    const three = policy({ reports: { keepDays: 3 } });
    assert.deepEqual(decide(three, [], '2026-12-01T10:00:00Z', reports).delete, [
      'nightly-2026-11-17',
      'nightly-2026-11-18',
      'nightly-2026-11-19',
    ]);
    // Runs older than what is kept get no report either.
    const d = decide(three, [backup('old', '2026-11-20T01:00:00Z')], '2026-12-01T10:00:00Z');
    assert.deepEqual(
      d.write.map((r) => r.spec.date),
      ['2026-12-01'],
    );
  });
});
