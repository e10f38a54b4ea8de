import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isLocal, type PlannedRecord, planReads } from './chunk-reader.ts';
import type { ChunkId, PackId } from './format.ts';
import { openStorage } from './storage/url.ts';

const record = (id: string, pack: string, offset: number, length: number): PlannedRecord => ({
  id: id as ChunkId,
  location: { pack: pack as PackId, type: 'data', codec: 0, rawLength: length, offset, length },
});
const limits = { maxGap: 10, maxLength: 100 };
const shape = (reads: ReturnType<typeof planReads>) =>
  reads.map((r) => [r.pack, r.offset, r.length, r.records.map((x) => x.id).join(',')]);

test('records of a pack are read in one range, in pack order, whatever order they are named in', () => {
  const reads = planReads([record('c', 'p', 40, 20), record('a', 'p', 0, 20), record('b', 'p', 20, 20)], limits);
  assert.deepEqual(shape(reads), [['p', 0, 60, 'a,b,c']]);
});

test('packs are read in the order first named, each on its own', () => {
  const reads = planReads([record('x', 'q', 0, 5), record('a', 'p', 0, 5), record('y', 'q', 5, 5)], limits);
  assert.deepEqual(shape(reads), [
    ['q', 0, 10, 'x,y'],
    ['p', 0, 5, 'a'],
  ]);
});

test('a gap up to maxGap is read through; a wider one starts a new range', () => {
  const reads = planReads([record('a', 'p', 0, 10), record('b', 'p', 20, 10), record('c', 'p', 41, 10)], limits);
  assert.deepEqual(shape(reads), [
    ['p', 0, 30, 'a,b'],
    ['p', 41, 10, 'c'],
  ]);
});

test('a range stops growing at maxLength; a record larger than that is read alone', () => {
  const reads = planReads(
    [record('a', 'p', 0, 60), record('b', 'p', 60, 40), record('c', 'p', 100, 1), record('d', 'p', 101, 150)],
    limits,
  );
  assert.deepEqual(shape(reads), [
    ['p', 0, 100, 'a,b'],
    ['p', 100, 1, 'c'],
    ['p', 101, 150, 'd'],
  ]);
});

test('a chunk named many times is read once', () => {
  const reads = planReads([record('a', 'p', 0, 10), record('a', 'p', 0, 10), record('b', 'p', 10, 10)], limits);
  assert.deepEqual(shape(reads), [['p', 0, 20, 'a,b']]);
});

test('nothing named, nothing read', () => {
  assert.deepEqual(planReads([], limits), []);
});

test('file storage, wrapped as a repository opens it, reads locally; object stores do not', () => {
  assert.equal(isLocal(openStorage(pathToFileURL(tmpdir()).href)), true);
  assert.equal(isLocal({ description: 's3://bucket/prefix' }), false);
  assert.equal(isLocal({ description: 'https://account.blob.core.windows.net/container' }), false);
});
