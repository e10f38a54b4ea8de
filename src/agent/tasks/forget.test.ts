// The agent's forget task against a real (file) repository: inside the repository's immutability
// period it refuses with the Immutable code and the snapshot stays; after it, the snapshot goes.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCode } from '../../errors.ts';
import { backupTree } from '../../repository/backup.ts';
import { Repository } from '../../repository/repository.ts';
import { testRepository } from '../../repository/testing/repository.ts';
import { forgetSnapshot } from './forget.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-forget-'));
after(() => rm(root, { recursive: true, force: true }));

async function repositoryWithOneSnapshot(name: string) {
  const repository = await testRepository(join(root, name));
  const source = join(root, `${name}-source`);
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'a.txt'), 'a');
  const snapshot = await backupTree(repository, source, { type: 'full', source: 'docs' });
  return { repository, snapshot };
}

test('inside the immutability period the forget task refuses and the snapshot stays', async () => {
  const { repository, snapshot } = await repositoryWithOneSnapshot('locked');
  await assert.rejects(forgetSnapshot(repository, snapshot.id, '1h'), (error: Error) => {
    assert.ok(isCode(error, 'Immutable'));
    assert.match(
      error.message,
      new RegExp(`snapshot ${snapshot.id.slice(0, 12)} in .* is immutable until .*\\(immutability\\.period 1h\\)`),
    );
    return true;
  });
  assert.deepEqual(
    (await (await Repository.reopen(repository)).snapshots()).map((s) => s.id),
    [snapshot.id],
  );
});

test('after the period, or without one, the snapshot is forgotten', async () => {
  const { repository, snapshot } = await repositoryWithOneSnapshot('expired');
  const later = new Date(Date.parse(snapshot.time) + 3600_000 + 1);
  assert.deepEqual(await forgetSnapshot(repository, snapshot.id, '1h', later), { snapshotId: snapshot.id });
  assert.deepEqual(await (await Repository.reopen(repository)).snapshots(), []);
  const other = await repositoryWithOneSnapshot('unlocked');
  await forgetSnapshot(other.repository, other.snapshot.id, undefined);
  assert.deepEqual(await (await Repository.reopen(other.repository)).snapshots(), []);
});
