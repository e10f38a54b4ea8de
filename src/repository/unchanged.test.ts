import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { testRepository } from './testing/repository.ts';
import { type ScanResult, scanUnchanged } from './unchanged.ts';
import { UnchangedScanner } from './unchanged-scanner.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-unchanged-'));
after(() => rm(root, { recursive: true, force: true }));

const repository = await testRepository(join(root, 'repo'));

/** A directory `a` (3 and 5 bytes), `b`, subdirectory `s`, backed up; its root tree as the scan gets it. */
async function backedUp(name: string): Promise<{ dir: string; parentTree: Buffer }> {
  const dir = join(root, name);
  await mkdir(join(dir, 's'), { recursive: true });
  await writeFile(join(dir, 'a'), 'aaa');
  await writeFile(join(dir, 'b'), 'bbbbb');
  await writeFile(join(dir, 's', 'c'), 'c');
  // An atime before the mtime: a read moves it (relatime).
  await utimes(join(dir, 'a'), new Date(1_000_000), new Date());
  const snapshot = await backupTree(repository, dir, { type: 'full', source: name });
  return { dir, parentTree: await repository.chunkStore().get(snapshot.root) };
}

function scan(dir: string, parentTree: Buffer, excluded: (path: string) => boolean = () => false): ScanResult {
  const path = Buffer.from(dir);
  return scanUnchanged({ base: path, realPath: path, display: '', parentTree }, excluded);
}

test('a directory as its parent tree has it is unchanged: its files counted, its subdirectories left to the walk', async () => {
  const { dir, parentTree } = await backedUp('same');
  assert.deepEqual(scan(dir, parentTree), { unchanged: true, files: 2, bytes: 8, chunks: 2, subdirs: [2] });
  // A change below a subdirectory is the walk's to find, not this directory's.
  await writeFile(join(dir, 's', 'c'), 'changed');
  assert.equal(scan(dir, parentTree).unchanged, true);
  // A name the exclusion patterns leave out is not looked at.
  await writeFile(join(dir, 'new.tmp'), 'x');
  assert.equal(scan(dir, parentTree, (path) => path.endsWith('.tmp')).unchanged, true);
  assert.equal(scan(dir, parentTree).unchanged, false);
});

test('anything a tree stores that differs from the parent tree is a change', async () => {
  const changes: Record<string, (dir: string) => Promise<unknown> | unknown> = {
    content: (dir) => writeFile(join(dir, 'b'), 'BBBBB'),
    mode: (dir) => chmod(join(dir, 'b'), 0o600),
    atime: (dir) => readFileSync(join(dir, 'a')),
    mtime: (dir) => utimes(join(dir, 'b'), new Date(), new Date(2_000_000)),
    added: (dir) => writeFile(join(dir, 'c'), ''),
    removed: (dir) => rm(join(dir, 'b')),
    'hard link': (dir) => link(join(dir, 'b'), join(dir, 'z')),
    'file now a symlink': async (dir) => {
      await rm(join(dir, 'b'));
      await symlink('a', join(dir, 'b'));
    },
    'directory now a file': async (dir) => {
      await rm(join(dir, 's'), { recursive: true });
      await writeFile(join(dir, 's'), '');
    },
    'file now a directory': async (dir) => {
      await rm(join(dir, 'b'));
      await mkdir(join(dir, 'b'));
    },
    'listing fails': (dir) => rm(dir, { recursive: true }),
  };
  for (const [name, change] of Object.entries(changes)) {
    const { dir, parentTree } = await backedUp(`change-${name.replaceAll(' ', '-')}`);
    assert.equal(scan(dir, parentTree).unchanged, true, `${name}: before`);
    await change(dir);
    assert.deepEqual(scan(dir, parentTree), { unchanged: false }, name);
  }
});

// The prescan lists the tree while the repository opens; a scan then takes its directory's listing instead of
// listing it again. Seen here by changing a directory after it was listed: its scan answers for the tree as listed.
test('a prescanning scanner answers from the listing made ahead, and lists itself once the walk has caught up', async () => {
  const { dir, parentTree } = await backedUp('prescanned');
  const scanner = UnchangedScanner.prescanning(dir, [], 1);
  try {
    await scanner.prescanned;
    await writeFile(join(dir, 'added'), 'after the listing');
    const job = { base: Buffer.from(dir), realPath: Buffer.from(dir), display: '', parentTree };
    assert.equal((await scanner.scan(job)).unchanged, true, 'the listing made before the file was added');
    // Taken once: asked again, the directory is listed anew.
    assert.equal((await scanner.scan(job)).unchanged, false, 'listed again');
  } finally {
    await scanner.close();
  }
});

test('names that are not ASCII, or not UTF-8, are compared and sorted as their bytes', async () => {
  const dir = join(root, 'names');
  await mkdir(dir, { recursive: true });
  // Byte order differs from UTF-16 order here: U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) in bytes,
  // after it in UTF-16 code units; 0xFF 0x61 is no UTF-8 at all.
  const names = [
    Buffer.from('z'),
    Buffer.from('é'),
    Buffer.from('\u{1F600}'),
    Buffer.from('\uFF21'),
    Buffer.from([0xff, 0x61]),
  ];
  for (const name of names) await writeFile(Buffer.concat([Buffer.from(`${dir}/`), name]), name);
  const snapshot = await backupTree(repository, dir, { type: 'full', source: 'names' });
  const parentTree = await repository.chunkStore().get(snapshot.root);
  assert.deepEqual(scan(dir, parentTree), { unchanged: true, files: 5, bytes: 12, chunks: 5, subdirs: [] });
  await writeFile(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xff, 0x61])]), 'changed');
  assert.equal(scan(dir, parentTree).unchanged, false);
});
