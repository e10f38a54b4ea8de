import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { blobNames, prefixes, type SnapshotId } from './format.ts';
import { Repository } from './repository.ts';
import type { Storage } from './storage/storage.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-repository-'));
after(() => rm(root, { recursive: true, force: true }));
const passphrase = Buffer.from('repository test');

test('a snapshot forgotten while snapshots() reads them is left out, not an error', async () => {
  const repository = await testRepository(join(root, 'repo'), passphrase);
  const { storage } = repository;
  const source = join(root, 'source');
  await rm(source, { recursive: true, force: true });
  await mkdir(source);
  await writeFile(join(source, 'a.txt'), 'a');
  const first = await backupTree(repository, source, { type: 'full', source: 'docs' });
  const second = await backupTree(repository, source, { type: 'full', source: 'docs' });

  // Another process forgets `first` right after this reader listed the snapshots.
  const racing: Storage = Object.create(storage, {
    list: {
      value: async function* (prefix: string) {
        yield* storage.list(prefix);
        if (prefix === prefixes.snapshots) await storage.delete(blobNames.snapshot(first.id as SnapshotId));
      },
    },
  });
  const reader = await Repository.open(racing, passphrase);
  assert.deepEqual(
    (await reader.snapshots()).map((s) => s.id),
    [second.id],
  );
});

test('latestSnapshotOf: the newest snapshot of one source, optionally taken before a time; none names the source', async () => {
  const repository = await testRepository(join(root, 'latest'));
  const source = join(root, 'latest-source');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'a.txt'), 'a');
  const older = await backupTree(repository, source, { type: 'full', source: 'ns/policy/docs' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  const between = new Date();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const newer = await backupTree(repository, source, { type: 'full', source: 'ns/policy/docs' });
  await backupTree(repository, source, { type: 'full', source: 'ns/policy/other' });

  assert.equal((await repository.latestSnapshotOf('ns/policy/docs')).id, newer.id);
  assert.equal((await repository.latestSnapshotOf('ns/policy/docs', between)).id, older.id);
  await assert.rejects(
    repository.latestSnapshotOf('ns/policy/docs', new Date(Date.parse(older.time))),
    /no snapshot of ns\/policy\/docs taken before .* in /,
  );
  await assert.rejects(repository.latestSnapshotOf('ns/gone/docs'), /no snapshot of ns\/gone\/docs in /);
});
