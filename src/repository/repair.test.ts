import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCode } from '../errors.ts';
import { blobNames, type ChunkId, sha256Hex } from './format.ts';
import { PackWriter } from './pack.ts';
import { readStoredPackHeader } from './repair.ts';
import { FileStorage } from './storage/file.ts';

const key = randomBytes(32);
let root: string;
let storage: FileStorage;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-repair-'));
  storage = new FileStorage(root);
  await storage.ensureContainer();
});
after(() => rm(root, { recursive: true, force: true }));

async function storedPack(chunks: number) {
  const writer = new PackWriter(key);
  for (let i = 0; i < chunks; i++)
    writer.add(sha256Hex(Buffer.from(`chunk ${i}`)) as ChunkId, 'data', 0, 3, Buffer.from(`${i % 1000}`.padStart(3)));
  const pack = writer.finish();
  await storage.put(blobNames.pack(pack.id), pack.bytes);
  return pack;
}

test('a stored pack header is read from the end of the pack, also when it is longer than the first read', async () => {
  for (const chunks of [1, 3000]) {
    const pack = await storedPack(chunks);
    assert.deepEqual(await readStoredPackHeader(storage, key, pack.id, pack.bytes.length), pack.entries);
  }
});

test('a pack whose header does not describe its size, or is too short, is Corrupt', async () => {
  const pack = await storedPack(2);
  await storage.put(blobNames.pack(pack.id), Buffer.concat([Buffer.from('extra'), pack.bytes]));
  await assert.rejects(readStoredPackHeader(storage, key, pack.id, pack.bytes.length + 5), (error: Error) => {
    assert.ok(isCode(error, 'Corrupt'));
    assert.match(error.message, new RegExp(`pack ${pack.id}: its header describes`));
    return true;
  });
  await storage.put(blobNames.pack(pack.id), Buffer.from('ab'));
  await assert.rejects(readStoredPackHeader(storage, key, pack.id, 2), (error) => isCode(error, 'Corrupt'));
});
