import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CrashPoint } from './crashing.ts';
import { FileStorage } from './file.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-crashing-'));
after(() => rm(root, { recursive: true, force: true }));

test('a crash hits the Nth write or delete across storages, before or after it takes effect, and every call after it', async () => {
  for (const mode of ['before', 'after'] as const) {
    const one = new FileStorage(join(root, `${mode}-one`));
    const two = new FileStorage(join(root, `${mode}-two`));
    await Promise.all([one.ensureContainer(), two.ensureContainer()]);
    const crash = new CrashPoint(3, mode);
    const [a, b] = [crash.wrap(one), crash.wrap(two)];
    await a.put('x', Buffer.from('1'));
    await b.put('y', Buffer.from('2'));
    await assert.rejects(a.delete('x'), /simulated crash at delete x \(write 3/);
    assert.ok(crash.crashed);
    assert.equal((await one.stat('x')) === undefined, mode === 'after', `${mode}: the delete took effect or not`);
    await assert.rejects(b.get('y'), /simulated crash at a call after the crash/);
    await assert.rejects(b.put('z', Buffer.from('3')), /simulated crash/);
    await crash.settled();
    assert.equal(await two.stat('z'), undefined);
    assert.deepEqual(crash.writes, ['put x', 'put y', 'delete x']);
  }
});
