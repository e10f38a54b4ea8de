import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChunkId, PackId } from './format.ts';
import { ChunkIndex, type IndexFile, liveIndexFiles } from './index.ts';

const entry = (id: string, offset: number) => ({
  id: id as ChunkId,
  type: 'data' as const,
  codec: 0,
  rawLength: 10,
  offset,
  length: 38,
});

test('the index maps chunks to the first pack listing them and writes packs back unchanged', () => {
  const index = new ChunkIndex();
  index.addPack('p1' as PackId, 100, [entry('a', 0), entry('b', 38)]);
  index.addPack('p2' as PackId, 60, [entry('b', 0)]);
  assert.equal(index.get('b' as ChunkId)?.pack, 'p1');
  assert.equal(index.chunkCount, 2);
  assert.deepEqual(index.chunksOf('p2' as PackId), ['b']);
  const file = index.toFile(['p2' as PackId]);
  assert.deepEqual(file.packs, [{ id: 'p2', size: 60, chunks: [entry('b', 0)] }], 'a pack keeps its own offsets');
});

// Index files are added trees first and their data chunks on the first lookup that needs them: what any lookup
// answers must be what adding every pack at once answers.
test('an index file added trees first answers every lookup as if each pack were added at once', () => {
  const chunk = (id: string, type: 'data' | 'tree', offset: number) => ({ ...entry(id, offset), type });
  const file: IndexFile = {
    version: 1,
    packs: [
      {
        id: 'p1' as PackId,
        size: 200,
        chunks: [chunk('t1', 'tree', 0), chunk('d1', 'data', 38), chunk('d2', 'data', 76)],
      },
      {
        id: 'p2' as PackId,
        size: 200,
        chunks: [chunk('d2', 'data', 0), chunk('t1', 'tree', 38), chunk('t2', 'tree', 76)],
      },
      { id: 'p3' as PackId, size: 100, chunks: [chunk('d3', 'data', 0)] },
    ],
  };
  const eager = new ChunkIndex();
  for (const pack of file.packs) eager.addPack(pack.id, pack.size, pack.chunks);
  const ids = ['t1', 't2', 'd1', 'd2', 'd3', 'missing'] as ChunkId[];
  const lookups: ((index: ChunkIndex) => unknown)[] = [
    ...ids.map((id) => (index: ChunkIndex) => index.get(id)),
    ...ids.map((id) => (index: ChunkIndex) => index.has(id)),
    (index) => index.chunkCount,
    (index) => index.packCount,
    (index) => index.chunksOf('p2' as PackId),
    (index) => index.toFile(['p1' as PackId, 'p3' as PackId]),
  ];
  // Each lookup first (before any other completed the data chunks), then every lookup after it.
  for (const [i, first] of lookups.entries()) {
    const lazy = new ChunkIndex();
    lazy.addFile(file);
    assert.deepEqual(first(lazy), first(eager), `lookup ${i} first`);
    for (const [j, lookup] of lookups.entries())
      assert.deepEqual(lookup(lazy), lookup(eager), `lookup ${j} after ${i}`);
  }
  // A pack added after an index file (a backup's flush) does not take the place of a chunk the file already listed.
  const lazy = new ChunkIndex();
  lazy.addFile(file);
  lazy.addPack('p4' as PackId, 38, [chunk('d3', 'data', 0)]);
  assert.equal(lazy.get('d3' as ChunkId)?.pack, 'p3');
});

test('index files superseded directly or through a chain of supersessions do not count', () => {
  const file = (...supersedes: string[]): IndexFile => ({ version: 1, packs: [], supersedes });
  // A prune wrote n1 (replacing a, b) and crashed; the next wrote n2 (replacing n1, a, b) and crashed too.
  const files = new Map([
    ['a', file()],
    ['b', file()],
    ['n1', file('a', 'b')],
    ['n2', file('n1', 'a', 'b')],
    ['backup', file()],
  ]);
  assert.deepEqual(liveIndexFiles(files).sort(), ['backup', 'n2']);
  // n2 written by an older prune that named only n1: a and b still do not count.
  files.set('n2', file('n1'));
  assert.deepEqual(liveIndexFiles(files).sort(), ['backup', 'n2']);
});
