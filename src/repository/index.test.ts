import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChunkId, PackId } from './format.ts';
import { ChunkIndex } from './index.ts';

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
