import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeTree } from '../../test/harness/fixtures.ts';
import { TidemarkError } from '../errors.ts';
import { backupTree } from './backup.ts';
import { check } from './check.ts';
import { blobNames, prefixes, type SnapshotId } from './format.ts';
import { forget, prune } from './prune.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import type { Storage } from './storage/storage.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-prune-'));
after(() => rm(root, { recursive: true, force: true }));
const passphrase = Buffer.from('prune test');
let counter = 0;

async function sourceDir(name: string, content: string): Promise<string> {
  const dir = join(root, `${name}-${++counter}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.txt`), content);
  return dir;
}

/** A storage whose deletes of index files fail, as if the process died right after writing the new index. */
function crashBeforeIndexDeletes(storage: Storage): Storage {
  return Object.create(storage, {
    delete: {
      value: (name: string) =>
        name.startsWith(prefixes.index)
          ? Promise.reject(new TidemarkError('Transient', `crashed before deleting ${name}`))
          : storage.delete(name),
    },
  });
}

test('a prune after a prune that crashed before deleting the old index files keeps every live chunk', async () => {
  const repository = await testRepository(join(root, `repo-${++counter}`), passphrase);
  const { storage } = repository;
  const gone = await sourceDir('gone', 'forgotten content');
  const kept = await sourceDir('kept', 'kept content');
  const forgotten = await backupTree(repository, gone, { type: 'full', source: 'gone' });
  const snapshot = await backupTree(repository, kept, { type: 'full', source: 'kept' });
  await forget(repository, [forgotten.id as SnapshotId]);

  await assert.rejects(prune(await Repository.open(crashBeforeIndexDeletes(storage), passphrase)), /crashed/);
  await prune(await Repository.open(storage, passphrase));

  const reopened = await Repository.open(storage, passphrase);
  assert.deepEqual((await check(reopened, { readData: true })).errors, []);
  const target = join(root, `restored-${++counter}`);
  await restoreTree(reopened, snapshot, target);
  assert.deepEqual(await describeTree(target), await describeTree(kept));
  // The forgotten snapshot's chunks are gone for good: backing its content up again stores it again.
  const again = await backupTree(reopened, gone, { type: 'full', source: 'gone' });
  assert.ok(again.summary.newChunks > 0);
});

test('prune keeps the packs of an index file written after it loaded the index', async () => {
  const repository = await testRepository(join(root, `repo-${++counter}`), passphrase);
  const { storage } = repository;
  const forgotten = await backupTree(repository, await sourceDir('gone', 'forgotten content'), {
    type: 'full',
    source: 'gone',
  });
  await forget(repository, [forgotten.id as SnapshotId]);
  const before = await Repository.open(storage, passphrase);
  const packs = before.index.packIds(); // its data pack and its tree pack
  assert.ok(packs.length > 0);

  // A writer that outlived its lock indexes the forgotten packs again right after prune writes its index.
  let written = false;
  const racing: Storage = Object.create(storage, {
    put: {
      value: async (name: string, data: Buffer) => {
        await storage.put(name, data);
        if (name.startsWith(prefixes.index) && !written) {
          written = true;
          await before.saveIndex(before.index.toFile(packs));
        }
      },
    },
  });
  const report = await prune(await Repository.open(racing, passphrase));
  assert.equal(report.deletedPacks, 0);
  for (const pack of packs)
    assert.ok(await storage.stat(blobNames.pack(pack)), 'a pack another index lists is still there');
  assert.deepEqual((await check(await Repository.open(storage, passphrase))).errors, []);
});
