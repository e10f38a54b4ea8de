import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { counting } from './counting.ts';
import { FileStorage } from './file.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-counting-'));
after(() => rm(root, { recursive: true, force: true }));

test('counts the bytes each get returns, by name prefix, until reset; writes and listings are not reads', async () => {
  const storage = counting(new FileStorage(root));
  await storage.ensureContainer();
  await storage.put('data/ab/pack', Buffer.alloc(1000, 1));
  await storage.put('index/one', Buffer.alloc(50, 2));
  await storage.get('data/ab/pack', { offset: 100, length: 300 });
  await storage.get('index/one');
  for await (const _ of storage.list('')) await storage.stat('index/one');
  assert.equal(storage.bytesRead(), 350);
  assert.equal(storage.bytesRead('data/'), 300);
  assert.deepEqual(storage.reads, [
    { name: 'data/ab/pack', bytes: 300 },
    { name: 'index/one', bytes: 50 },
  ]);
  storage.reset();
  assert.equal(storage.bytesRead(), 0);
  await assert.rejects(storage.get('missing'));
  assert.equal(storage.reads.length, 0, 'a failed get read nothing');
});
