// Comparing what a backup recorded per table with a restored copy or a live source (issue 13).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ObjectCount } from './source.ts';
import { compareTables, describeDifferences } from './verify.ts';

const recorded: ObjectCount[] = [
  { name: 'public.same', records: 2, checksum: 'a'.repeat(32), key: { column: 'id', min: '1', max: '2' } },
  { name: 'public.changed', records: 3, checksum: 'b'.repeat(32) },
  { name: 'public.grown', records: 5, key: { column: 'id', min: '1', max: '5' } },
  { name: 'public.gone', records: 1 },
  { name: 'public.unchecked', records: 4, checksum: 'c'.repeat(32) },
];
const observed: ObjectCount[] = [
  { name: 'public.new', records: 0 },
  { name: 'public.unchecked', records: 4 },
  { name: 'public.grown', records: 8, key: { column: 'id', min: '1', max: '8' } },
  { name: 'public.changed', records: 3, checksum: 'd'.repeat(32) },
  { name: 'public.same', records: 2, checksum: 'a'.repeat(32), key: { column: 'id', min: '1', max: '2' } },
];

test('compareTables: per table records, checksums and key ranges; tables missing and extra', () => {
  const comparison = compareTables(recorded, observed);
  assert.equal(comparison.ok, false);
  assert.deepEqual(comparison.missing, ['public.gone']);
  assert.deepEqual(comparison.extra, ['public.new']);
  const by = Object.fromEntries(comparison.tables.map((t) => [t.name, t]));
  assert.deepEqual(
    comparison.tables.map((t) => t.name),
    ['public.same', 'public.changed', 'public.grown', 'public.unchecked'],
  );
  assert.equal(by['public.same']?.ok, true);
  assert.equal(by['public.same']?.checksumEqual, true);
  assert.equal(by['public.changed']?.checksumEqual, false);
  assert.equal(by['public.changed']?.ok, false);
  assert.equal(by['public.grown']?.recordsDelta, 3);
  assert.equal(by['public.grown']?.keyEqual, false);
  assert.equal(by['public.unchecked']?.checksumEqual, undefined, 'only one side has a checksum');
  assert.equal(by['public.unchecked']?.ok, true);
  assert.equal(compareTables(recorded, recorded).ok, true);
  assert.equal(compareTables([], []).ok, true);
});

test('describeDifferences names each difference, bounded', () => {
  const comparison = compareTables(recorded, observed);
  assert.equal(
    describeDifferences(comparison),
    'public.changed: content differs (checksum); public.grown: 8 rows, 5 in the backup, key id 1..8, 1..5 in the backup; public.gone: missing; public.new: not in the backup',
  );
  assert.equal(
    describeDifferences(comparison, 2),
    'public.changed: content differs (checksum); public.grown: 8 rows, 5 in the backup, key id 1..8, 1..5 in the backup; and 2 more',
  );
  assert.equal(describeDifferences(compareTables(recorded, recorded)), 'no differences');
});

test('key values compare as integers and timestamps as instants', () => {
  const at = (value: string, min = '-1'): ObjectCount => ({
    name: 't',
    records: 1,
    key: { column: 'id', min, max: '7' },
    newest: { column: 'at', value },
  });
  const same = compareTables([at('2024-01-01 10:00:00+02', '-01')], [at('2024-01-01 08:00:00+00')]);
  assert.equal(same.tables[0]?.newestEqual, true);
  assert.equal(same.tables[0]?.keyEqual, true);
  assert.equal(compareTables([at('2024-01-01 10:00:00+02')], [at('2024-01-01 10:00:00+00')]).ok, false);
});
