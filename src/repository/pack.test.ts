import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isCode } from '../errors.ts';
import { type ChunkId, sha256Hex } from './format.ts';
import { openRecord, PackWriter, readPackHeader } from './pack.ts';

const key = randomBytes(32);
const id = (n: number) => sha256Hex(Buffer.from([n])) as ChunkId;

function samplePack() {
  const writer = new PackWriter(key);
  writer.add(id(1), 'data', 0, 5, Buffer.from('hello'));
  writer.add(id(2), 'tree', 2, 100, Buffer.from('{"entries":[]}'));
  return writer.finish();
}

test('a pack round-trips: header entries locate records that decrypt to what was added', () => {
  const { id: packId, bytes, entries } = samplePack();
  assert.equal(packId, sha256Hex(bytes), 'the pack id is the hash of its bytes');
  const header = readPackHeader(key, packId, bytes);
  assert.deepEqual(header, entries);
  assert.deepEqual(
    header.map((e) => [e.type, e.codec, e.rawLength]),
    [
      ['data', 0, 5],
      ['tree', 2, 100],
    ],
  );
  const second = header[1];
  assert.ok(second);
  const record = bytes.subarray(second.offset, second.offset + second.length);
  assert.equal(openRecord(key, second.id, record, packId).toString(), '{"entries":[]}');
});

test('a record read under another chunk id fails authentication', () => {
  const { id: packId, bytes, entries } = samplePack();
  const first = entries[0];
  assert.ok(first);
  const record = bytes.subarray(first.offset, first.offset + first.length);
  assert.throws(
    () => openRecord(key, id(2), record, packId),
    (e) => isCode(e, 'Corrupt'),
  );
});

test('a damaged header or a wrong key is Corrupt, naming the pack', () => {
  const { id: packId, bytes } = samplePack();
  const damaged = Buffer.from(bytes);
  damaged[damaged.length - 10] = (damaged[damaged.length - 10] ?? 0) ^ 0xff;
  assert.throws(
    () => readPackHeader(key, packId, damaged),
    (e: Error) => isCode(e, 'Corrupt') && e.message.includes(packId),
  );
  assert.throws(
    () => readPackHeader(randomBytes(32), packId, bytes),
    (e) => isCode(e, 'Corrupt'),
  );
  assert.throws(
    () => readPackHeader(key, packId, Buffer.alloc(2)),
    (e) => isCode(e, 'Corrupt'),
  );
});
