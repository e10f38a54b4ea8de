import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupReport } from '../../api/kinds.ts';
import { isReportDate, pickReports, reportText, summaryTable } from './report.ts';

function report(policy: string, date: string, namespace = 'tenants'): BackupReport {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupReport',
    metadata: { name: `${policy}-${date}`, namespace },
    spec: { policy, date, timeZone: 'UTC' },
    status: {
      phase: 'Final',
      runs: 2,
      succeeded: 1,
      failed: 1,
      running: 0,
      logicalBytes: 2048,
      uploadedBytes: 100,
      sources: [
        {
          name: 'db',
          runs: 2,
          succeeded: 1,
          failed: 1,
          running: 0,
          logicalBytes: 2048,
          uploadedBytes: 100,
          records: 12,
          objects: [
            { name: 'public.orders', records: 10, change: -3 },
            { name: 'public.users', records: 2 },
          ],
          objectsOmitted: 4,
          skipped: [{ name: 'public.big', reason: 'permission denied' }],
        },
      ],
      backups: [
        {
          backup: 'db-1',
          source: 'db',
          type: 'full',
          phase: 'Succeeded',
          startTime: '2026-12-01T01:00:00.000Z',
          completionTime: '2026-12-01T01:01:30.000Z',
          logicalBytes: 2048,
          uploadedBytes: 100,
          records: 12,
          removed: true,
        },
        {
          backup: 'db-2',
          source: 'db',
          type: 'full',
          phase: 'Failed',
          startTime: '2026-12-01T02:00:00.000Z',
          completionTime: '2026-12-01T02:00:05.000Z',
          error: 'connection refused\nmore detail',
        },
      ],
    },
  };
}

test('pickReports: the date asked for, else each policy its newest', () => {
  const all = [report('a', '2026-12-01'), report('a', '2026-12-02'), report('b', '2026-12-01')];
  assert.deepEqual(
    pickReports(all).map((r) => r.metadata.name),
    ['a-2026-12-02', 'b-2026-12-01'],
  );
  assert.deepEqual(
    pickReports(all, 'a', '2026-12-01').map((r) => r.metadata.name),
    ['a-2026-12-01'],
  );
  assert.deepEqual(pickReports(all, 'c'), []);
});

test('isReportDate', () => {
  assert.ok(isReportDate('2026-12-01'));
  for (const bad of ['2026-13-01', 'yesterday', '2026-12-1', '']) assert.ok(!isReportDate(bad), bad);
});

test('summaryTable: a row per source; the namespace with -A', () => {
  const [header, row] = summaryTable([report('nightly', '2026-12-01')]).split('\n');
  assert.match(
    header ?? '',
    /^POLICY\s+DATE\s+SOURCE\s+RUNS\s+SUCCEEDED\s+FAILED\s+RUNNING\s+READ\s+UPLOADED\s+RECORDS\s+NOT BACKED UP$/,
  );
  assert.match(row ?? '', /^nightly\s+2026-12-01\s+db\s+2\s+1\s+1\s+0\s+2\.0 KiB\s+100 B\s+12\s+1$/);
  assert.match(summaryTable([report('nightly', '2026-12-01')], true), /^NAMESPACE\s+POLICY[^\n]*\ntenants\s+nightly/);
});

test('reportText: the runs, the counts per object with their change, what was not backed up, what was cut', () => {
  const text = reportText(report('nightly', '2026-12-01'));
  assert.match(
    text,
    /^Report nightly-2026-12-01: policy nightly, 2026-12-01 \(UTC\), Final\n2 runs: 1 succeeded, 1 failed/,
  );
  assert.match(text, /\ndb-1 \(removed\)\s+db\s+full\s+Succeeded\s+01:00:00Z\s+1m30s\s+2\.0 KiB\s+100 B\s+12\n/);
  assert.match(text, /\ndb-2\s+db\s+full\s+Failed\s+02:00:00Z\s+5s\s+-\s+-\s+-\s+connection refused\n/);
  assert.match(text, /\ndb\s+public\.orders\s+10\s+-3\ndb\s+public\.users\s+2\s+-\n\(4 more objects not listed\)/);
  assert.match(text, /\nSOURCE\s+NOT BACKED UP\s+REASON\ndb\s+public\.big\s+permission denied\n/);
});
