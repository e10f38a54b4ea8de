import assert from 'node:assert/strict';
import { test } from 'node:test';
import { audit, bounded } from './audit.ts';

const envOf = (vars: { name: string; value?: string }[]) => Object.fromEntries(vars.map((v) => [v.name, v.value]));

test('what the operator writes for an audit Job is what the agent reads back', () => {
  const env = {
    ...envOf(audit.jobEnv({ snapshotId: 'ab'.repeat(32) })),
    TIDEMARK_TIMESTAMP_COLUMNS: '{"public.orders":"placed"}',
    TIDEMARK_SOURCE: 'file:///data',
    TIDEMARK_EXCLUDES: '["*.tmp"]',
  };
  assert.deepEqual(audit.input(env), {
    sourceUrl: 'file:///data',
    allDatabases: false,
    excludes: ['*.tmp'],
    snapshot: 'ab'.repeat(32),
    timestampColumns: { 'public.orders': 'placed' },
  });
});

test('timestamp columns that are not a map of names are refused, naming the variable; a snapshot is required', () => {
  const base = { TIDEMARK_SOURCE: 'file:///data', TIDEMARK_SNAPSHOT: 'abc' };
  assert.throws(() => audit.input({ ...base, TIDEMARK_TIMESTAMP_COLUMNS: '["a"]' }), {
    code: 'InvalidArgument',
    message: /TIDEMARK_TIMESTAMP_COLUMNS/,
  });
  assert.throws(() => audit.input({ TIDEMARK_SOURCE: 'file:///data' }), { message: /TIDEMARK_SNAPSHOT is not set/ });
});

test('a report fits the termination message: at most 5 entries a list, long paths cut, fewer entries when still too long; totals stay', () => {
  const long = (i: number) => `/${'deep/'.repeat(100)}file-${i}`;
  const list = (n: number) => ({ items: Array.from({ length: n }, (_, i) => long(i)), total: n * 10 });
  const report = bounded({
    snapshotId: 'a'.repeat(64),
    snapshotTime: '2026-11-03T02:00:00.000Z',
    missingObjects: 900,
    files: {
      live: 5000,
      missing: list(400),
      removed: list(300),
      changed: { items: list(200).items.map((path) => ({ path, change: 'size,mtime' })), total: 2000 },
    },
  });
  assert.ok(Buffer.byteLength(JSON.stringify(report)) <= 3000, `${Buffer.byteLength(JSON.stringify(report))} bytes`);
  assert.ok((report.files?.missing.items.length ?? 0) >= 1, 'still names some');
  assert.ok(report.files?.missing.items.every((p) => p.length <= 200 && p.startsWith('…')));
  assert.deepEqual(
    [report.files?.missing.total, report.files?.removed.total, report.files?.changed.total],
    [4000, 3000, 2000],
  );
});
