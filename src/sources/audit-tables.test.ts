import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditTables } from './audit-tables.ts';

test('missing rows are live minus recorded per table; unchanged tables are not listed', () => {
  const audit = auditTables(
    [
      { name: 'public.orders', records: 100 },
      { name: 'public.customers', records: 10 },
      { name: 'public.settings', records: 2 },
    ],
    [
      { name: 'public.orders', records: 107 },
      { name: 'public.customers', records: 10 },
      { name: 'public.settings', records: 1 },
    ],
  );
  assert.equal(audit.tables, 3);
  assert.deepEqual(audit.differences, [
    { name: 'public.orders', recorded: 100, live: 107, missing: 7, removed: 0 },
    { name: 'public.settings', recorded: 2, live: 1, missing: 0, removed: 1 },
  ]);
  assert.equal(audit.missingRecords, 7);
});

test('a table created since is all missing; a table dropped since is all removed, even when empty', () => {
  const audit = auditTables(
    [
      { name: 'old', records: 4 },
      { name: 'empty_gone', records: 0 },
    ],
    [{ name: 'new', records: 3 }],
  );
  assert.deepEqual(audit.differences, [
    { name: 'empty_gone', recorded: 0, missing: 0, removed: 0 },
    { name: 'new', live: 3, missing: 3, removed: 0 },
    { name: 'old', recorded: 4, missing: 0, removed: 4 },
  ]);
  assert.equal(audit.missingRecords, 3);
});

test('equal counts with a key or timestamp past the recorded one are listed: rows were added and others deleted', () => {
  const audit = auditTables(
    [
      {
        name: 'events',
        records: 5,
        key: { column: 'id', min: '1', max: '9' },
        newest: { column: 'at', value: '2026-01-01 10:00:00+00' },
      },
      { name: 'same', records: 5, key: { column: 'id', min: '1', max: '5' } },
    ],
    [
      {
        name: 'events',
        records: 5,
        key: { column: 'id', min: '3', max: '11' },
        newest: { column: 'at', value: '2026-01-01 11:00:00+00' },
      },
      { name: 'same', records: 5, key: { column: 'id', min: '1', max: '5' } },
    ],
  );
  assert.deepEqual(audit.differences, [
    {
      name: 'events',
      recorded: 5,
      live: 5,
      missing: 0,
      removed: 0,
      keyAdvanced: { column: 'id', recorded: '9', live: '11' },
      newerRows: { column: 'at', recorded: '2026-01-01 10:00:00+00', live: '2026-01-01 11:00:00+00' },
    },
  ]);
});

test('keys and times are ordered by value: 10 after 9, one instant at two offsets is not newer, unreadable text never is', () => {
  const table = (max: string, newest: string) => ({
    name: 't',
    records: 1,
    key: { column: 'id', min: '1', max },
    newest: { column: 'at', value: newest },
  });
  const [difference] = auditTables(
    [table('9', '2026-01-01 00:30:00+00')],
    [table('10', '2026-01-01 01:30:00+01')],
  ).differences;
  assert.deepEqual(difference?.keyAdvanced, { column: 'id', recorded: '9', live: '10' });
  assert.equal(difference?.newerRows, undefined, 'the same instant');
  assert.deepEqual(auditTables([table('b', 'x')], [table('c', 'y')]).differences, []);
});
