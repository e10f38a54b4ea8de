// Restore reads chunks in batches: one ranged read per run of needed records in a pack, chunks written at their
// offsets in many files at once. Counted through a storage wrapper over real file storage.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCode } from '../errors.ts';
import { backupTree } from './backup.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import type { Snapshot } from './snapshot.ts';
import { FileStorage } from './storage/file.ts';
import type { Storage } from './storage/storage.ts';
import { testRepository } from './testing/repository.ts';

const MiB = 1024 * 1024;
const passphrase = Buffer.from('restore');
const root = await mkdtemp(join(tmpdir(), 'tidemark-restore-'));
after(() => rm(root, { recursive: true, force: true }));
const source = join(root, 'source');
let snapshot: Snapshot;

/**
 * Records every ranged read of a pack (`data/…`) made through it. Described as `description`: an object store's
 * (the default) makes the reader plan as it does for one, where every request is a round trip.
 */
function countingPackReads(storage: Storage, description = 's3://counted/repo'): Storage & { packReads: string[] } {
  const packReads: string[] = [];
  return {
    packReads,
    description,
    get: (name, range) => {
      if (name.startsWith('data/')) packReads.push(name);
      return storage.get(name, range);
    },
    put: (name, data) => storage.put(name, data),
    stat: (name) => storage.stat(name),
    list: (prefix) => storage.list(prefix),
    delete: (name) => storage.delete(name),
    ensureContainer: () => storage.ensureContainer(),
  };
}

before(async () => {
  const repository = await testRepository(join(root, 'repo'), passphrase, {
    chunker: { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
  });
  // 36 MiB that does not compress: three 16 MiB packs, hundreds of chunks in one file.
  await mkdir(join(source, 'docs/deeper'), { recursive: true });
  await writeFile(join(source, 'big.bin'), randomBytes(36 * MiB));
  for (let i = 0; i < 400; i++)
    await writeFile(join(source, 'docs', `note-${i}.txt`), `${i} `.repeat(300 + ((i * 37) % 1000)));
  const shared = randomBytes(3000);
  for (let i = 0; i < 30; i++) await writeFile(join(source, 'docs/deeper', `same-${i}`), shared);
  await writeFile(join(source, 'empty'), '');
  const sparse = await open(join(source, 'sparse.img'), 'w');
  await sparse.write(Buffer.alloc(5000, 7), 0, 5000, MiB + 100);
  await sparse.truncate(3 * MiB);
  await sparse.close();
  snapshot = await backupTree(repository, source, { type: 'full', source: 'volume' });
});

/** Relative path → content of every file under `dir`. */
async function contents(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) for (const [p, c] of await contents(dir, path)) found.set(p, c);
    else found.set(path, await readFile(join(dir, path)));
  }
  return found;
}

test('a multi-pack snapshot restores identical with one ranged read per pack, plus one per directory tree', async () => {
  const storage = countingPackReads(new FileStorage(join(root, 'repo')));
  const repository = await Repository.open(storage, passphrase);
  const packs = repository.index.packIds().length;
  assert.ok(packs >= 3, `the snapshot spans ${packs} packs`);
  storage.packReads.length = 0;
  const target = join(root, 'restored');
  await restoreTree(repository, await repository.findSnapshot(snapshot.id), target);

  const trees = 3; // the root, docs, docs/deeper
  assert.ok(
    storage.packReads.length <= packs + trees,
    `${storage.packReads.length} pack reads for ${packs} packs and ${trees} trees`,
  );
  const expected = await contents(source);
  const actual = await contents(target);
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, data] of expected) assert.ok(actual.get(path)?.equals(data), `${path} restores identical`);
  const blocks = (await lstat(join(target, 'sparse.img'))).blocks;
  assert.ok(blocks <= 32, `sparse.img stays sparse (${blocks} blocks of 512 bytes for 5000 bytes of data)`);
});

test('on file storage the reads are at most 4 MiB each (memory), and the restore is identical', async () => {
  const file = new FileStorage(join(root, 'repo'));
  const storage = countingPackReads(file, file.description);
  const sizes: number[] = [];
  const get = storage.get;
  storage.get = (name, range) => {
    if (name.startsWith('data/')) sizes.push(range?.length ?? Number.POSITIVE_INFINITY);
    return get(name, range);
  };
  const repository = await Repository.open(storage, passphrase);
  const target = join(root, 'restored-local');
  await restoreTree(repository, await repository.findSnapshot(snapshot.id), target);

  assert.ok(sizes.length > 0 && Math.max(...sizes) <= 4 * MiB, `largest read ${Math.max(...sizes)} bytes`);
  const expected = await contents(source);
  const actual = await contents(target);
  for (const [path, data] of expected) assert.ok(actual.get(path)?.equals(data), `${path} restores identical`);
});

test('one damaged record fails the restore with Corrupt naming the chunk and its pack', async () => {
  const damagedRoot = join(root, 'repo-damaged');
  await cp(join(root, 'repo'), damagedRoot, { recursive: true });
  const repository = await Repository.open(new FileStorage(damagedRoot), passphrase);
  const pack = repository.index.packIds().find((id) => (repository.index.packSize(id) ?? 0) > 8 * MiB);
  assert.ok(pack);
  const file = await open(join(damagedRoot, 'data', pack.slice(0, 2), pack), 'r+');
  await file.write(Buffer.from([0xff]), 0, 1, 4 * MiB); // inside some record of big.bin
  await file.close();
  await assert.rejects(restoreTree(repository, snapshot, join(root, 'restored-damaged')), (error: Error) => {
    assert.ok(isCode(error, 'Corrupt'), error.message);
    assert.match(error.message, new RegExp(`chunk [0-9a-f]{12} from pack ${pack}`));
    return true;
  });
});
