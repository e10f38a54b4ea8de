import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, chown, link, mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import type { ChunkId } from './format.ts';
import { Repository } from './repository.ts';
import { FileStorage } from './storage/file.ts';
import { decodeTree, type TreeEntry } from './tree.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-backup-'));
after(() => rm(root, { recursive: true, force: true }));

// Small files are read whole with synchronous calls (backup.ts, readWhole): a file that grows after the walk's
// lstat, or is deleted before it is opened, must still be noted, as a large file read as a stream is.
test('a small file changed after its lstat is noted as changed while read, a deleted one as vanished', async () => {
  const repository = await Repository.init(new FileStorage(join(root, 'repo')), Buffer.from('backup test'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const source = join(root, 'source');
  await mkdir(source);
  for (const name of ['a', 'b', 'c', 'd']) await writeFile(join(source, name), `${name}\n`.repeat(100));
  let touched = false;
  const snapshot = await backupTree(repository, source, {
    type: 'full',
    source: 'test',
    // One entry at a time: a's read reports progress (the first report is at once) before b and c are opened.
    parallelFiles: 1,
    onProgress: () => {
      if (touched) return;
      touched = true;
      appendFileSync(join(source, 'b'), 'grown\n');
      rmSync(join(source, 'c'));
    },
  });
  assert.equal(touched, true);
  assert.deepEqual(snapshot.skipped, [
    { path: '/b', reason: 'changed while being read: stored as read, may be inconsistent' },
    { path: '/c', reason: 'vanished while being read' },
  ]);
  assert.equal(snapshot.summary.files, 3);
});

// An unchanged directory's tree is the parent's (its id reused, not stored again); a change to anything a tree
// stores makes a new tree, the same, apart from chunk ids (keyed by chain), as a full backup's.
test('an incremental reuses the parent tree of an unchanged directory and makes a new one for any change', async () => {
  const repository = await Repository.init(new FileStorage(join(root, 'repo-reuse')), Buffer.from('backup test'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const source = join(root, 'source-reuse');
  const dirs = ['chmod', 'chown', 'utimes', 'atime', 'mtime', 'renamed', 'added', 'removed', 'linked', 'same'];
  for (const dir of dirs) {
    await mkdir(join(source, dir), { recursive: true });
    for (const name of ['a', 'b']) await writeFile(join(source, dir, name), `${dir}/${name}\n`);
  }
  // An atime before the mtime: reading the file moves it (relatime), and nothing else (not the ctime).
  await utimes(join(source, 'atime', 'a'), new Date(1_000_000), new Date());
  const full = await backupTree(repository, source, { type: 'full', source: 'test' });
  const atimeBefore = statSync(join(source, 'atime', 'a'), { bigint: true });
  readFileSync(join(source, 'atime', 'a'));
  const atimeAfter = statSync(join(source, 'atime', 'a'), { bigint: true });
  assert.notEqual(atimeAfter.atimeNs, atimeBefore.atimeNs, 'reading moved the atime');
  assert.equal(atimeAfter.ctimeNs, atimeBefore.ctimeNs, 'reading left the ctime');
  await chmod(join(source, 'chmod', 'a'), 0o600);
  await chown(join(source, 'chown', 'a'), 1234, 1234);
  await utimes(join(source, 'utimes', 'a'), new Date(1_500_000), new Date(2_000_000));
  await link(join(source, 'linked', 'a'), join(source, 'linked', 'c'));
  await utimes(join(source, 'mtime', 'a'), new Date(1_000_000), new Date(3_000_000));
  await rename(join(source, 'renamed', 'a'), join(source, 'renamed', 'c'));
  await writeFile(join(source, 'added', 'c'), 'c\n');
  await rm(join(source, 'removed', 'a'));
  const incremental = await backupTree(repository, source, { type: 'incremental', parent: full, source: 'test' });
  const again = await backupTree(repository, source, { type: 'full', source: 'test' });

  const store = repository.chunkStore();
  const subtrees = async (id: ChunkId) =>
    new Map((decodeTree(await store.get(id)).entries as TreeEntry[]).map((e) => [e.name, e.subtree as ChunkId]));
  const withoutIds = async (id: ChunkId) =>
    // As JSON: the same keys in the same order, so the same bytes once the ids are the same.
    decodeTree(await store.get(id)).entries.map(({ content, subtree, ...rest }) => JSON.stringify(rest));
  const [before, after, fresh] = [
    await subtrees(full.root),
    await subtrees(incremental.root),
    await subtrees(again.root),
  ];
  for (const dir of dirs) {
    const [was, is, walked] = [before.get(dir), after.get(dir), fresh.get(dir)];
    if (dir === 'same') assert.equal(is, was, dir);
    else assert.notEqual(is, was, dir);
    assert.deepEqual(await withoutIds(is as ChunkId), await withoutIds(walked as ChunkId), dir);
  }
  assert.deepEqual(await withoutIds(incremental.root), await withoutIds(again.root));
});
