// Issue 14, many small files: a tree backup works on many entries at once (stat, extended attributes, read,
// chunk, store), yet makes every order-dependent decision in walk order, so its trees are the same whatever the
// concurrency; and a nothing-changed incremental reuses the parent's extended attributes only where the ctime
// says nothing changed. Real file storage, real files, extended attributes set with Python's os module.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from '../../src/repository/backup.ts';
import type { ChunkId } from '../../src/repository/format.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { FileStorage } from '../../src/repository/storage/file.ts';
import { decodeName, decodeTree, type TreeEntry } from '../../src/repository/tree.ts';
import { pseudoRandomBuffer } from '../harness/fixtures.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('backup-concurrency');
after(() => workDir.remove());

const newRepository = async (name: string) => {
  const dir = join(workDir.path, name);
  await mkdir(dir);
  // Small chunks, so a file of a few hundred KiB is several chunks and several reads.
  return Repository.init(new FileStorage(dir), Buffer.from('passphrase'), {
    scrypt: { N: 1024, r: 8, p: 1 },
    chunker: { min: 4096, avg: 16384, max: 65536 },
  });
};

/** Sets atime and mtime (ns) through Python: an atime in the future keeps reads from moving it (relatime). */
function setTimes(paths: string[], mtimeNs: bigint): void {
  const atime = BigInt(Date.now() + 3_600_000) * 1_000_000n;
  const script = `
import os, sys, json
for path, atime, mtime in json.load(sys.stdin):
    os.utime(path, ns=(int(atime), int(mtime)), follow_symlinks=False)`;
  execFileSync('python3', ['-c', script], {
    input: JSON.stringify(paths.map((path) => [path, `${atime}`, `${mtimeNs}`])),
  });
}

function setXattr(path: string, name: string, value: string): void {
  execFileSync('python3', [
    '-c',
    'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())',
    path,
    name,
    value,
  ]);
}

/** Every tree of a snapshot, by path: the tree id and its entries. */
async function trees(
  repository: Repository,
  snapshot: Snapshot,
): Promise<Map<string, { id: ChunkId; entries: TreeEntry[] }>> {
  const store = repository.chunkStore();
  const out = new Map<string, { id: ChunkId; entries: TreeEntry[] }>();
  const visit = async (id: ChunkId, path: string) => {
    const { entries } = decodeTree(await store.get(id));
    out.set(path, { id, entries });
    for (const e of entries) if (e.type === 'dir' && e.subtree) await visit(e.subtree, `${path}/${decodeName(e)}`);
  };
  await visit(snapshot.root, '');
  return out;
}

test('trees, counts and skipped paths are the same whether one entry or 32 are worked on at once', async () => {
  const source = join(workDir.path, 'source');
  const files: string[] = [];
  for (let d = 0; d < 6; d++) {
    const dir = join(source, `dir-${d}`, d % 2 ? 'nested/deeper' : 'flat');
    await mkdir(dir, { recursive: true });
    await mkdir(join(source, `dir-${d}`, 'empty'));
    for (let f = 0; f < 60; f++) {
      const path = join(dir, `file-${f}`);
      await writeFile(path, `${d}/${f} `.repeat(50 + ((d * 61 + f * 17) % 400)));
      files.push(path);
    }
  }
  // More names than one lstat batch (512), with subdirectories among them.
  const crowded = join(source, 'dir-6', 'many');
  await mkdir(crowded, { recursive: true });
  for (let f = 0; f < 1100; f++) await writeFile(join(crowded, `m-${String(f).padStart(4, '0')}`), `m${f}`);
  for (const sub of ['m-0511x', 'm-0512x', 'm-1099x']) await mkdir(join(crowded, sub, 'inside'), { recursive: true });
  // Larger than one read buffer (256 KiB) and than one chunk: several reads and chunks.
  await writeFile(join(source, 'dir-0', 'large'), await pseudoRandomBuffer('large', 700_000));
  await writeFile(join(source, 'dir-3', 'medium'), await pseudoRandomBuffer('medium', 90_000));
  // Hard-link groups across directories, the first name in walk order carries the content.
  await link(join(source, 'dir-5', 'nested/deeper/file-3'), join(source, 'dir-0', 'a-link'));
  await link(join(source, 'dir-5', 'nested/deeper/file-3'), join(source, 'dir-2', 'flat', 'z-link'));
  await link(join(source, 'dir-1', 'nested/deeper/file-9'), join(source, 'dir-4', 'b-link'));
  // A group whose first name is slow to read, before a group whose first name is quick: numbers by walk order.
  await link(join(source, 'dir-0', 'large'), join(source, 'dir-3', 'large-link'));
  await link(join(source, 'dir-3', 'medium'), join(source, 'dir-0', 'm-link'));
  await symlink('dir-0/large', join(source, 'to-large'));
  execFileSync('mkfifo', [join(source, 'dir-2', 'a-fifo'), join(source, 'dir-4', 'flat', 'b-fifo')]);
  await writeFile(join(source, 'dir-1', 'excluded.tmp'), 'left out');
  setXattr(join(source, 'dir-2', 'flat', 'file-7'), 'user.origin', 'scanner');

  const repository = await newRepository('repo');
  const options = { source: 'concurrency', excludes: ['**/*.tmp'] };
  const full = await backupTree(repository, source, { ...options, type: 'full', parallelFiles: 1 });
  // Half the files change; both incrementals below read those and reuse the rest from `full`.
  const changed = files.filter((_, i) => i % 2 === 0);
  for (const path of changed) await writeFile(path, `changed ${path}`);
  await writeFile(join(source, 'dir-0', 'large'), await pseudoRandomBuffer('large, changed', 700_000));
  changed.push(join(source, 'dir-0', 'large'));
  setTimes(changed, 1_700_000_000_123_456_789n);

  const one = await backupTree(repository, source, { ...options, type: 'incremental', parent: full, parallelFiles: 1 });
  const many = await backupTree(repository, source, {
    ...options,
    type: 'incremental',
    parent: full,
    parallelFiles: 32,
  });
  assert.equal(many.root, one.root, 'the same root tree id');
  assert.deepEqual(await trees(repository, many), await trees(repository, one));
  const { durationMs: _a, ...countsOne } = one.summary;
  const { durationMs: _b, ...countsMany } = many.summary;
  assert.deepEqual(
    { ...countsMany, newChunks: 0, newBytes: 0, uploadedBytes: 0 },
    {
      ...countsOne,
      newChunks: 0,
      newBytes: 0,
      uploadedBytes: 0,
    },
  );
  assert.deepEqual(many.objects, one.objects);
  assert.deepEqual(many.skipped, [
    { path: '/dir-2/a-fifo', reason: 'not a regular file, directory or symlink' },
    { path: '/dir-4/flat/b-fifo', reason: 'not a regular file, directory or symlink' },
  ]);
  assert.deepEqual(many.skipped, one.skipped);

  const links = [...(await trees(repository, many))].flatMap(([path, { entries }]) =>
    entries
      .filter((e) => e.link !== undefined)
      .map((e) => `${path}/${decodeName(e)} ${e.link} ${e.content ? 'content' : ''}`),
  );
  assert.deepEqual(links.sort(), [
    '/dir-0/a-link 1 content',
    '/dir-0/large 2 content',
    '/dir-0/m-link 3 content',
    '/dir-1/nested/deeper/file-9 4 content',
    '/dir-2/flat/z-link 1 ',
    '/dir-3/large-link 2 ',
    '/dir-3/medium 3 ',
    '/dir-4/b-link 4 ',
    '/dir-5/nested/deeper/file-3 1 ',
  ]);

  // Nothing changed since `many`: every tree is the same again, whatever the concurrency.
  const again = await backupTree(repository, source, {
    ...options,
    type: 'incremental',
    parent: many,
    parallelFiles: 32,
  });
  assert.equal(again.root, many.root);
  assert.equal(again.summary.newChunks, 0);
});

test("an incremental takes the parent's extended attributes where the ctime is unchanged, and reads them where it moved", async () => {
  const source = join(workDir.path, 'xattrs');
  await mkdir(source);
  for (const name of ['kept', 'set-later', 'removed-later']) await writeFile(join(source, name), name);
  setXattr(join(source, 'kept'), 'user.kept', 'one');
  setXattr(join(source, 'removed-later'), 'user.gone', 'soon');
  const repository = await newRepository('repo-xattrs');
  const full = await backupTree(repository, source, { type: 'full', source: 'xattrs' });
  setXattr(join(source, 'set-later'), 'user.new', 'two');
  execFileSync('python3', [
    '-c',
    'import os, sys; os.removexattr(sys.argv[1], "user.gone")',
    join(source, 'removed-later'),
  ]);
  const incremental = await backupTree(repository, source, { type: 'incremental', parent: full, source: 'xattrs' });
  const root = (await trees(repository, incremental)).get('')?.entries ?? [];
  const xattrs = Object.fromEntries(root.map((e) => [decodeName(e).toString(), e.xattrs ?? []]));
  assert.deepEqual(xattrs, {
    kept: [{ name: 'user.kept', valueB64: Buffer.from('one').toString('base64') }],
    'removed-later': [],
    'set-later': [{ name: 'user.new', valueB64: Buffer.from('two').toString('base64') }],
  });
});

test("the backup's own reads leave files' atimes alone: a nothing-changed incremental stores no new tree", async () => {
  const repository = await newRepository('noatime');
  const source = join(workDir.path, 'noatime-source');
  await mkdir(join(source, 'sub'), { recursive: true });
  // Freshly written files have atime = mtime, so under relatime (or strictatime) a plain read moves the atime.
  for (let i = 0; i < 20; i++) await writeFile(join(source, i % 2 ? 'sub' : '', `file-${i}`), `content ${i}\n`);
  const full = await backupTree(repository, source, { type: 'full', source: 'noatime' });
  const incremental = await backupTree(repository, source, { type: 'incremental', parent: full, source: 'noatime' });
  assert.equal(incremental.summary.newChunks, 0);
  assert.equal(incremental.root, full.root);
});
