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
