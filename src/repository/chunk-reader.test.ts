import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isCode } from '../errors.ts';
import { ChunkReader, isLocal, openWindows, type PlannedRecord, planReads } from './chunk-reader.ts';
import { blobNames, type ChainId, type ChunkId, type PackId } from './format.ts';
import type { ChunkLocation } from './index.ts';
import { Repository } from './repository.ts';
import { FileStorage } from './storage/file.ts';
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

test('windows hold records up to the decoded bytes given, at least one each, in order', () => {
  const records = [4, 4, 2, 9, 1, 1, 1].map((length, i) => record(`c${i}`, 'p', i * 10, length));
  const windows = openWindows(records, 8).map((w) => w.map((r) => r.id).join(','));
  assert.deepEqual(windows, ['c0,c1', 'c2', 'c3', 'c4,c5,c6']);
  assert.deepEqual(openWindows([], 8), []);
});

// Records are opened on the pipeline's workers a window at a time: what comes back must be each chunk as stored,
// across windows and reads, and damage must fail as Corrupt naming the chunk and its pack, as on the main thread.
test('chunks opened on the pipeline workers are the chunks stored; a damaged record fails Corrupt naming it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tidemark-reader-'));
  try {
    const storage = new FileStorage(join(root, 'repo'));
    const repository = await Repository.init(storage, Buffer.from('reader test'), { scrypt: { N: 1024, r: 8, p: 1 } });
    const store = repository.chunkStore();
    const chain = randomBytes(16).toString('hex') as ChainId;
    const chunks = new Map<ChunkId, Buffer>();
    for (let i = 0; i < 300; i++) {
      // Text (compressed) and random (stored as is), 1 B to ~200 KiB.
      const length = 1 + ((i * 7919) % (200 * 1024));
      const data = i % 2 ? randomBytes(length) : Buffer.from(`${i} `.repeat(length).slice(0, length));
      chunks.set((await store.put(chain, 'data', data)).id, data);
    }
    await repository.saveIndex(await store.flush());
    const reader = new ChunkReader(storage, repository.keys.encryption, repository.index, { decodeAhead: 256 * 1024 });
    const read = new Map<ChunkId, Buffer>();
    await reader.read(chunks.keys(), async (id, data) => {
      read.set(id, Buffer.from(data));
    });
    assert.equal(read.size, chunks.size);
    for (const [id, data] of chunks) assert.ok(read.get(id)?.equals(data), `chunk ${id}`);

    const [damagedId] = [...chunks.keys()].slice(-1) as [ChunkId];
    const location = repository.index.get(damagedId) as ChunkLocation;
    const packPath = join(root, 'repo', blobNames.pack(location.pack));
    const pack = await readFile(packPath);
    const at = location.offset + Math.floor(location.length / 2);
    pack[at] = (pack[at] as number) ^ 0xff;
    await writeFile(packPath, pack);
    const fresh = new ChunkReader(storage, repository.keys.encryption, repository.index);
    await assert.rejects(
      fresh.read([damagedId], async () => {}),
      (error: Error) =>
        isCode(error, 'Corrupt') &&
        error.message.includes(damagedId.slice(0, 12)) &&
        error.message.includes(location.pack),
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
