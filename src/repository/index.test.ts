import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isCode } from '../errors.ts';
import type { ChunkId, ChunkType, PackId } from './format.ts';
import { ChunkIndex, type ChunkLocation, liveIndexFiles } from './index.ts';
import { decodeIndexFile, encodeIndexFile, entriesOf, type IndexFile, ROW_BYTES, rowsOf } from './index-file.ts';
import type { PackEntry } from './pack.ts';

const hex = (name: string) => createHash('sha256').update(name).digest('hex');
const chunk = (name: string, offset: number, type: ChunkType = 'data'): PackEntry => ({
  id: hex(name) as ChunkId,
  type,
  codec: offset % 3,
  rawLength: 10 + offset,
  offset,
  length: 38,
});
const pack = (name: string, size: number, entries: PackEntry[]) => ({
  id: hex(name) as PackId,
  size,
  rows: rowsOf(entries),
});

test('the index maps chunks to the first pack listing them and writes packs back unchanged', () => {
  const index = new ChunkIndex();
  index.add(pack('p1', 100, [chunk('a', 0), chunk('b', 38)]));
  index.add(pack('p2', 60, [chunk('b', 0)]));
  assert.equal(index.get(hex('b') as ChunkId)?.pack, hex('p1'));
  assert.equal(index.chunkCount, 2);
  assert.equal(index.packCount, 2);
  assert.deepEqual(index.chunksOf(hex('p2') as PackId), [hex('b')]);
  const file = index.toFile([hex('p2') as PackId]);
  assert.deepEqual(
    file.packs.map((p) => ({ ...p, rows: entriesOf(p.rows) })),
    [{ id: hex('p2'), size: 60, rows: [chunk('b', 0)] }],
    'a pack keeps its own offsets',
  );
  for (const missing of [hex('c'), 'b', hex('a').toUpperCase().slice(1), `${hex('a').slice(0, 63)}z`, ''])
    assert.equal(index.get(missing as ChunkId), undefined, `not found: "${missing}"`);
});

// The table grows and is rebuilt as packs are added; every answer must be what a Map of the same adds gives.
test('an index of many packs answers every lookup as a map of the first location of each id would', () => {
  const index = new ChunkIndex();
  const model = new Map<string, ChunkLocation>();
  const packs = new Map<string, { size: number; ids: string[] }>();
  for (let p = 0; p < 60; p++) {
    // Ids repeat across packs (a chunk listed twice), and one pack is added twice (two index files list it).
    const entries = Array.from({ length: 50 + p * 7 }, (_, i) =>
      chunk(`c${(p * 31 + i * 17) % 9000}`, i * 38, i % 9 ? 'data' : 'tree'),
    );
    const id = hex(`p${p % 55}`) as PackId;
    const file: IndexFile = { packs: [{ id, size: 38 * entries.length, rows: rowsOf(entries) }] };
    index.addFile(p % 2 ? file : decodeIndexFile(encodeIndexFile(file, 2), 'index/x'));
    for (const { id: chunkId, ...at } of entries) if (!model.has(chunkId)) model.set(chunkId, { pack: id, ...at });
    packs.set(id, { size: 38 * entries.length, ids: entries.map((e) => e.id) });
  }
  assert.equal(index.chunkCount, model.size);
  assert.deepEqual(index.packIds().sort(), [...packs.keys()].sort());
  for (const [id, at] of model) {
    assert.deepEqual(index.get(id as ChunkId), at);
    assert.ok(index.has(id as ChunkId));
  }
  for (let i = 9000; i < 9500; i++) assert.equal(index.has(hex(`c${i}`) as ChunkId), false);
  for (const [id, { size, ids }] of packs) {
    assert.equal(index.packSize(id as PackId), size);
    assert.deepEqual(index.chunksOf(id as PackId), ids);
  }
});

test('index files read back as written, binary in version 2 and JSON in version 1', () => {
  const file: IndexFile = {
    packs: [pack('p1', 2 ** 40 + 7, [chunk('a', 0, 'tree'), chunk('b', 38)]), pack('p2', 0, [])],
    supersedes: [hex('old'), 'ünusual name'],
  };
  const plain = (f: IndexFile) => ({ ...f, packs: f.packs.map((p) => ({ ...p, rows: entriesOf(p.rows) })) });
  const binary = encodeIndexFile(file, 2);
  assert.equal(binary.subarray(0, 4).toString(), 'TMIX');
  assert.deepEqual(plain(decodeIndexFile(binary, 'index/x')), plain(file));
  const json = encodeIndexFile(file, 1);
  assert.equal(JSON.parse(json.toString()).version, 1, 'what version 1 readers read');
  assert.deepEqual(JSON.parse(json.toString()).packs[0].chunks[0], chunk('a', 0, 'tree'));
  assert.deepEqual(plain(decodeIndexFile(json, 'index/x')), plain(file));
  assert.deepEqual(decodeIndexFile(encodeIndexFile({ packs: [] }, 1), 'index/x'), { packs: [] });
});

test('a damaged binary index file fails as Corrupt, naming the file', () => {
  const binary = encodeIndexFile({ packs: [pack('p1', 100, [chunk('a', 0), chunk('b', 38)])], supersedes: ['s'] }, 2);
  const corrupt = (e: unknown) => isCode(e, 'Corrupt') && /index\/bad/.test((e as Error).message);
  for (const length of [5, 9, 12, 20, binary.length - 1])
    assert.throws(() => decodeIndexFile(binary.subarray(0, length), 'index/bad'), corrupt, `cut at ${length}`);
  assert.throws(() => decodeIndexFile(Buffer.concat([binary, Buffer.alloc(1)]), 'index/bad'), corrupt, 'a byte more');
  const badType = Buffer.from(binary);
  badType[binary.length - ROW_BYTES + 32] = 7;
  assert.throws(() => decodeIndexFile(badType, 'index/bad'), corrupt, 'an unknown chunk type');
  const newer = Buffer.from(binary);
  newer[4] = 3;
  assert.throws(
    () => decodeIndexFile(newer, 'index/bad'),
    (e) => isCode(e, 'Unsupported'),
  );
  assert.throws(() => decodeIndexFile(Buffer.from('{"version":1}'), 'index/bad'), corrupt, 'JSON without packs');
});

test('index files superseded directly or through a chain of supersessions do not count', () => {
  const file = (...supersedes: string[]): IndexFile => ({ packs: [], supersedes });
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
