import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isCode } from '../errors.ts';
import { decompress } from './compression.ts';
import type { ChunkId, ChunkType, PackId } from './format.ts';
import { ChunkIndex, type ChunkLocation, liveIndexFiles } from './index.ts';
import { decodeIndexFile, encodeIndexFile, entriesOf, type IndexFile, rowsOf } from './index-file.ts';
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
test('an index of many packs answers every lookup as a map of the first location of each id would', async () => {
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
    index.addFile(p % 2 ? file : await decodeIndexFile(await encodeIndexFile(file, 2), 'index/x'));
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

test('index files read back as written, binary in version 2 and JSON in version 1', async () => {
  // Records back to back (as a pack writer lays them out), and offsets that are not (a gap, one going back).
  const odd = [chunk('c', 500), { ...chunk('d', 100), length: 2 ** 32 - 1 }, chunk('e', 7)];
  const file: IndexFile = {
    packs: [pack('p1', 2 ** 40 + 7, [chunk('a', 0, 'tree'), chunk('b', 38)]), pack('p2', 0, []), pack('p3', 9, odd)],
    supersedes: [hex('old'), 'ünusual name'],
  };
  const plain = (f: IndexFile) => ({ ...f, packs: f.packs.map((p) => ({ ...p, rows: entriesOf(p.rows) })) });
  const binary = await encodeIndexFile(file, 2);
  assert.equal(binary.subarray(0, 5).toString('latin1'), 'TMIX\x02');
  assert.deepEqual(plain(await decodeIndexFile(binary, 'index/x')), plain(file));
  const json = await encodeIndexFile(file, 1);
  assert.equal(JSON.parse(json.toString()).version, 1, 'what version 1 readers read');
  assert.deepEqual(JSON.parse(json.toString()).packs[0].chunks[0], chunk('a', 0, 'tree'));
  assert.deepEqual(plain(await decodeIndexFile(json, 'index/x')), plain(file));
  assert.deepEqual(await decodeIndexFile(await encodeIndexFile({ packs: [] }, 1), 'index/x'), { packs: [] });
});

test('a binary index file stores its columns compressed: under 37 bytes a chunk for packs written back to back', async () => {
  const entries = Array.from({ length: 5000 }, (_, i) => ({
    ...chunk(`c${i}`, 0),
    rawLength: 1024 + ((i * 7919) % 3072),
  }));
  let offset = 0;
  for (const entry of entries) {
    entry.offset = offset;
    entry.length = Math.floor(entry.rawLength * 0.37) + 28;
    offset += entry.length;
  }
  const binary = await encodeIndexFile({ packs: [pack('p', offset, entries)] }, 2);
  assert.ok(binary.length / entries.length < 37, `${binary.length / entries.length} bytes a chunk`);
});

test('a damaged binary index file fails as Corrupt, naming the file', async () => {
  const file = { packs: [pack('p1', 100, [chunk('a', 0), chunk('b', 38)])], supersedes: ['s'] };
  const binary = await encodeIndexFile(file, 2);
  const corrupt = (e: unknown) => isCode(e, 'Corrupt') && /index\/bad/.test((e as Error).message);
  const rejects = (bytes: Buffer, what: string) => assert.rejects(decodeIndexFile(bytes, 'index/bad'), corrupt, what);
  for (const length of [5, 9, 14, 20, binary.length - 1]) await rejects(binary.subarray(0, length), `cut at ${length}`);
  await rejects(Buffer.concat([binary, Buffer.alloc(1)]), 'a byte more');
  // The body stored as is (codec 0), to reach what is checked after decompressing.
  const body = await decompress(binary[5] as number, binary.subarray(14));
  const stored = (b: Buffer) => {
    const head = Buffer.from(binary.subarray(0, 14));
    head[5] = 0;
    head.writeBigUInt64LE(BigInt(b.length), 6);
    return Buffer.concat([head, b]);
  };
  assert.deepEqual(await decodeIndexFile(stored(body), 'index/x'), await decodeIndexFile(binary, 'index/x'));
  await rejects(stored(body.subarray(0, body.length - 1)), 'a column cut short');
  await rejects(stored(Buffer.concat([body, Buffer.alloc(1)])), 'a byte more in the body');
  await rejects(stored(body.subarray(0, 6)), 'cut inside a name');
  const badType = Buffer.from(body);
  badType[body.length - 2 * 14 + 1] = 7; // the second row's type: the columns are 32 + 1 + 1 + 4 + 4 + 4 bytes a row
  await assert.rejects(decodeIndexFile(stored(badType), 'index/bad'), /index\/bad: .* unknown type 7/);
  const newer = Buffer.from(binary);
  newer[4] = 3;
  await assert.rejects(decodeIndexFile(newer, 'index/bad'), (e) => isCode(e, 'Unsupported'));
  await rejects(Buffer.from('{"version":1}'), 'JSON without packs');
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
