import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TidemarkError } from '../../errors.ts';
import { faulty } from './faulty.ts';
import { FileStorage } from './file.ts';

let root: string;
let opened = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-faulty-'));
});
after(() => rm(root, { recursive: true, force: true }));

async function fresh() {
  const base = new FileStorage(join(root, `repo-${++opened}`));
  await base.ensureContainer();
  return { base, storage: faulty(base) };
}

const denied = new TidemarkError('AccessDenied', 'injected');

describe('faulty', () => {
  test('fails the chosen calls of an operation, counting from 1, and lets the others through', async () => {
    const { base, storage } = await fresh();
    await base.put('b', Buffer.from('b'));
    storage.inject('get', { call: 2, times: 2, error: denied });
    assert.equal(storage.pending(), 1);
    assert.equal((await storage.get('b')).toString(), 'b');
    await assert.rejects(storage.get('b'), (error) => error === denied);
    await assert.rejects(storage.get('b'), (error) => error === denied);
    assert.equal((await storage.get('b')).toString(), 'b');
    assert.equal(storage.calls('get'), 4);
    assert.equal(storage.pending(), 0);
  });

  test('a failed put writes nothing; with answerLost the blob is written and the error still thrown', async () => {
    const { base, storage } = await fresh();
    storage.inject('put', { error: denied });
    await assert.rejects(storage.put('crashed', Buffer.from('x')), (error) => error === denied);
    assert.equal(await base.stat('crashed'), undefined);
    storage.inject('put', { error: denied, answerLost: true });
    await assert.rejects(storage.put('lost', Buffer.from('x')), (error) => error === denied);
    assert.deepEqual(await base.stat('lost'), { name: 'lost', size: 1 });
  });

  test('delays a call, then lets it through', async () => {
    const { storage } = await fresh();
    storage.inject('stat', { delayMs: 50 });
    const started = performance.now();
    assert.equal(await storage.stat('x'), undefined);
    assert.ok(performance.now() - started >= 45);
  });

  test('listItem fails a listing after the blobs before it were yielded', async () => {
    const { base, storage } = await fresh();
    for (const name of ['a', 'b', 'c']) await base.put(name, Buffer.from(name));
    storage.inject('listItem', { call: 3, error: denied });
    const seen: string[] = [];
    await assert.rejects(
      async () => {
        for await (const blob of storage.list('')) seen.push(blob.name);
      },
      (error) => error === denied,
    );
    assert.equal(seen.length, 2);
    assert.equal(storage.calls('list'), 1);
  });
});
