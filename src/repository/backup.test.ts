import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, chown, link, mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { keptXattr } from './file-metadata.ts';
import type { ChunkId } from './format.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import type { Snapshot } from './snapshot.ts';
import { FileStorage } from './storage/file.ts';
import { testRepository } from './testing/repository.ts';
import { perNameXattrs, setXattrs } from './testing/xattrs.ts';
import { decodeName, decodeTree, type TreeEntry } from './tree.ts';
import { UnchangedScanner } from './unchanged-scanner.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-backup-'));
after(() => rm(root, { recursive: true, force: true }));

// Small files are read whole with synchronous calls (backup.ts, readWhole): a file that grows after the walk's
// lstat, or is deleted before it is opened, must still be noted, as a large file read as a stream is.
test('a small file changed after its lstat is noted as changed while read, a deleted one as vanished', async () => {
  const repository = await testRepository(join(root, 'repo'));
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
  const repository = await testRepository(join(root, 'repo-reuse'));
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

// Extended attributes are asked of the file metadata helper a batch of a directory's names at a time
// (backup.ts, batchXattrs): each entry must carry exactly what reading its own attributes gives.
test('each entry carries the extended attributes a read of its own gives: odd names, a directory larger than a batch, names vanishing meanwhile, an incremental', async () => {
  const repository = await testRepository(join(root, 'repo-xattrs'));
  const source = join(root, 'source-xattrs');
  const at = (...names: (string | Buffer)[]) =>
    Buffer.concat([Buffer.from(source), ...names.flatMap((n) => [Buffer.from('/'), Buffer.from(n)])]);
  await mkdir(join(source, 'sub'), { recursive: true });
  // More than two batches of 512 names; f-0700 and f-1050 (second and third batch) vanish during the walk.
  const numbered = Array.from({ length: 1100 }, (_, i) => `f-${String(i).padStart(4, '0')}`);
  const odd = ['with space', 'new\nline', Buffer.from([0x66, 0xff, 0xfe, 0x0a])];
  for (const name of [...numbered, ...odd]) await writeFile(at(name), name);
  await writeFile(at('sub', 'inner'), 'inner');
  await symlink('f-0000', at('link'));
  const binary = (i: number) => Buffer.from([i & 255, 0, 255, 10, 32, 61, 58, 33]);
  setXattrs([
    ...numbered.flatMap((name, i): [Buffer, Buffer, Buffer][] =>
      i % 50 === 0
        ? [
            [at(name), Buffer.from('user.i'), binary(i)],
            ...(i % 100 === 0
              ? [[at(name), Buffer.from('trusted.host'), Buffer.from('here')] as [Buffer, Buffer, Buffer]]
              : []),
          ]
        : [],
    ),
    ...odd.map((name): [Buffer, Buffer, Buffer] => [at(name), Buffer.from('user.odd name\n'), Buffer.from(name)]),
    [at('sub'), Buffer.from('user.dir'), Buffer.alloc(0)],
    [at('sub', 'inner'), Buffer.from('user.inner'), Buffer.from('x')],
  ]);

  /** Every entry's kept attributes (hex values), by directory and name; and the same read name by name. */
  const backedUp = async (snapshot: Snapshot) => {
    const store = repository.chunkStore();
    const dirs: Record<string, Record<string, Record<string, string>>> = {};
    const walk = async (id: ChunkId, dir: string) => {
      dirs[dir] = {};
      for (const entry of decodeTree(await store.get(id)).entries as TreeEntry[]) {
        const xattrs = entry.xattrs ?? [];
        dirs[dir][decodeName(entry).toString('hex')] = Object.fromEntries(
          xattrs.map((x) => [x.name, Buffer.from(x.valueB64, 'base64').toString('hex')]),
        );
        if (entry.subtree) await walk(entry.subtree, decodeName(entry).toString());
      }
    };
    await walk(snapshot.root, '');
    return dirs;
  };
  const readOneByOne = (dirs: Record<string, Record<string, unknown>>) =>
    Object.fromEntries(
      Object.entries(dirs).map(([dir, entries]) => {
        const names = Object.keys(entries).map((hex) => Buffer.from(hex, 'hex'));
        const read = perNameXattrs(at(...(dir ? [dir] : [])), names);
        return [
          dir,
          Object.fromEntries(
            names.map((name, i) => {
              const xattrs = read[i] as Record<string, string>;
              return [name.toString('hex'), Object.fromEntries(Object.entries(xattrs).filter(([n]) => keptXattr(n)))];
            }),
          ),
        ];
      }),
    );

  let removed = false;
  const full = await backupTree(repository, source, {
    type: 'full',
    source: 'xattrs',
    parallelFiles: 1,
    onProgress: () => {
      if (removed) return;
      removed = true;
      for (const name of ['f-0700', 'f-1050']) rmSync(at(name));
    },
  });
  assert.equal(removed, true);
  assert.deepEqual(full.skipped, [
    { path: '/f-0700', reason: 'vanished while being read' },
    { path: '/f-1050', reason: 'vanished while being read' },
  ]);
  assert.deepEqual(full.lossy, ['extended attributes outside user.* and POSIX ACLs not kept: trusted.host']);
  const fullXattrs = await backedUp(full);
  assert.equal(Object.keys(fullXattrs[''] ?? {}).length, 1100 - 2 + odd.length + 2);
  assert.deepEqual(fullXattrs, readOneByOne(fullXattrs));
  assert.equal(fullXattrs['']?.[Buffer.from('f-1000').toString('hex')]?.['user.i'], binary(1000).toString('hex'));
  assert.deepEqual(fullXattrs.sub, { [Buffer.from('inner').toString('hex')]: { 'user.inner': '78' } });

  // Without trusted.* (the attributes of a parent that dropped some are not reused), then an incremental that reads
  // only what moved: an attribute set in the third batch, one removed in the first, the rest the parent's.
  execFileSync('python3', [
    '-c',
    'import os, sys\nfor p in sys.argv[1:]: os.removexattr(p, "trusted.host")',
    ...numbered.filter((_, i) => i % 100 === 0 && i !== 700).map((name) => join(source, name)),
  ]);
  const clean = await backupTree(repository, source, { type: 'full', source: 'xattrs' });
  assert.equal(clean.lossy, undefined);
  setXattrs([[at('f-1099'), Buffer.from('user.new'), Buffer.from('later')]]);
  execFileSync('python3', ['-c', 'import os, sys; os.removexattr(sys.argv[1], "user.i")', join(source, 'f-0050')]);
  const incremental = await backupTree(repository, source, { type: 'incremental', parent: clean, source: 'xattrs' });
  const incrementalXattrs = await backedUp(incremental);
  assert.deepEqual(incrementalXattrs, readOneByOne(incrementalXattrs));
  assert.deepEqual(incrementalXattrs['']?.[Buffer.from('f-1099').toString('hex')], {
    'user.new': Buffer.from('later').toString('hex'),
  });
  assert.deepEqual(incrementalXattrs['']?.[Buffer.from('f-0050').toString('hex')], {});
});

// Where the parent dropped some attributes (trusted.*), an unchanged file's content is reused but its attributes
// are read again: a failure to read them is that entry's alone, and skips it as the content read would.
test('an entry whose extended attributes cannot be read is skipped (permission denied), the rest of its batch kept', async () => {
  const source = join(root, 'source-locked');
  await mkdir(source);
  for (const name of ['a', 'b', 'c', 'host']) await writeFile(join(source, name), name);
  setXattrs([
    ...['a', 'b', 'c'].map((name): [Buffer, Buffer, Buffer] => [
      Buffer.from(join(source, name)),
      Buffer.from('user.x'),
      Buffer.from(name),
    ]),
    [Buffer.from(join(source, 'host')), Buffer.from('trusted.host'), Buffer.from('here')],
  ]);
  await chmod(join(source, 'b'), 0);
  const repo = join(root, 'repo-locked');
  const passphrase = 'backup test';
  const repository = await testRepository(repo, passphrase);
  const full = await backupTree(repository, source, { type: 'full', source: `file://${source}` });
  assert.deepEqual(full.lossy, ['extended attributes outside user.* and POSIX ACLs not kept: trusted.host']);
  // We are root: the incremental runs (the CLI, in a process of its own) without the capabilities that bypass
  // file permissions, so b's attributes cannot be read, as for anyone but root.
  const cli = join(import.meta.dirname, '..', 'cli', 'main.ts');
  const output = execFileSync(
    'setpriv',
    [
      '--inh-caps=-dac_override,-dac_read_search',
      '--bounding-set=-dac_override,-dac_read_search',
      process.execPath,
      '--import',
      'tsx',
      cli,
      'repo',
      '--repo',
      `file://${repo}`,
      '--json',
      'backup',
      '--source',
      source,
      '--type',
      'incremental',
    ],
    { encoding: 'utf8', env: { ...process.env, TIDEMARK_REPO_KEY: passphrase }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const incremental = JSON.parse(output) as Snapshot;
  assert.equal(incremental.parent, full.id);
  assert.deepEqual(incremental.skipped, [{ path: '/b', reason: 'permission denied' }]);
  const reopened = await Repository.open(new FileStorage(repo), Buffer.from(passphrase));
  const entries = decodeTree(await reopened.chunkStore().get(incremental.root)).entries as TreeEntry[];
  assert.deepEqual(
    entries.map((e) => [decodeName(e).toString(), (e.xattrs ?? []).map((x) => x.name)]),
    [
      ['a', ['user.x']],
      ['c', ['user.x']],
      ['host', []],
    ],
  );
});

// Directories of an incremental are checked against the parent ahead of the walk on worker threads
// (unchanged.ts): what such a backup stores must be what a walk looking at every name itself stores.
test('an incremental with directory scan workers stores exactly what one without them stores', async () => {
  const repository = await testRepository(join(root, 'repo-scan'));
  const source = join(root, 'source-scan');
  const files = async (dir: string, count: number, text = 'x') => {
    await mkdir(join(source, dir), { recursive: true });
    for (let i = 0; i < count; i++) await writeFile(join(source, dir, `f${i}`), `${dir} ${i} ${text}\n`);
  };
  await files('.', 2);
  for (const dir of ['same', 'content', 'atime', 'added', 'removed', 'mode', 'nested/x', 'nested/y/z', 'deep/a/b/c'])
    await files(dir, 3);
  await files('large-same', 700); // more names than one lstat batch of the walk
  await files('large-changed', 700);
  await files('links', 2);
  await link(join(source, 'links', 'f0'), join(source, 'links', 'hard'));
  await symlink('f0', join(source, 'links', 'soft'));
  await files('excluded', 2);
  await writeFile(join(source, 'excluded', 'old.tmp'), 'tmp');
  await files('xattrs', 2);
  setXattrs([[Buffer.from(join(source, 'xattrs', 'f0')), Buffer.from('user.kept'), Buffer.from('value')]]);
  await utimes(join(source, 'atime', 'f0'), new Date(1_000_000), new Date());
  const excludes = ['*.tmp'];
  const full = await backupTree(repository, source, { type: 'full', source: 'test', excludes });

  const unchanged = await backupTree(repository, source, {
    type: 'incremental',
    parent: full,
    source: 'test',
    excludes,
  });
  assert.equal(unchanged.root, full.root, 'nothing changed: the parent root tree');

  await writeFile(join(source, 'content', 'f1'), 'changed\n');
  readFileSync(join(source, 'atime', 'f0'));
  await writeFile(join(source, 'added', 'new'), 'new\n');
  await rm(join(source, 'removed', 'f2'));
  await chmod(join(source, 'mode'), 0o700);
  await writeFile(join(source, 'nested', 'y', 'z', 'f0'), 'deep change\n');
  await writeFile(join(source, 'large-changed', 'f650'), 'changed\n');
  await writeFile(join(source, 'excluded', 'new.tmp'), 'tmp');
  const summaryOf = ({ root, summary, objects, skipped, lossy }: Snapshot) => ({
    root,
    files: summary.files,
    dirs: summary.dirs,
    chunks: summary.chunks,
    logicalBytes: summary.logicalBytes,
    objects,
    skipped,
    lossy,
  });
  const options = { type: 'incremental', parent: full, source: 'test', excludes } as const;
  const walked = await backupTree(repository, source, { ...options, scanWorkers: 0 });
  const scanned = await backupTree(repository, source, { ...options, scanWorkers: 2 });
  assert.notEqual(walked.root, full.root);
  assert.deepEqual(summaryOf(scanned), summaryOf(walked));
  // With the tree listed ahead (the listings taken by the scans), and when the walk catches up with the listing.
  const prescanned = UnchangedScanner.prescanning(source, excludes, 2);
  await prescanned.prescanned;
  const fromListings = await backupTree(repository, source, { ...options, scanner: prescanned });
  assert.deepEqual(summaryOf(fromListings), summaryOf(walked));
  // Its time is when the tree was first looked at: when the prescan started, before the backup did.
  assert.equal(fromListings.time, new Date(prescanned.since ?? 0).toISOString());
  const caughtUp = await backupTree(repository, source, {
    ...options,
    scanner: UnchangedScanner.prescanning(source, excludes, 2),
  });
  assert.deepEqual(summaryOf(caughtUp), summaryOf(walked));
});

// The walk reuses a parent's file entry only when the parent kept every attribute; otherwise it reads each file's
// again and tells in `lossy` what it drops. A scan's "unchanged" reuses files as they are, so no directory may be
// scanned after such a parent: a snapshot would then claim to be exact.
test('after a parent that dropped extended attributes, an incremental with scan workers reads them all again', async () => {
  const repository = await testRepository(join(root, 'repo-dropped'));
  const source = join(root, 'source-dropped');
  for (const dir of ['a', 'b', 'b/c']) {
    await mkdir(join(source, dir), { recursive: true });
    for (const name of ['f0', 'f1']) await writeFile(join(source, dir, name), `${dir}/${name}\n`);
  }
  setXattrs([
    [Buffer.from(join(source, 'b', 'c', 'f1')), Buffer.from('trusted.host'), Buffer.from('here')],
    [Buffer.from(join(source, 'a', 'f0')), Buffer.from('user.kept'), Buffer.from('value')],
  ]);
  const full = await backupTree(repository, source, { type: 'full', source: 'test' });
  const dropped = /extended attributes outside user.* and POSIX ACLs not kept: trusted.host/;
  assert.match(full.lossy?.join('\n') ?? '', dropped);
  const options = { type: 'incremental', parent: full, source: 'test' } as const;
  const walked = await backupTree(repository, source, { ...options, scanWorkers: 0 });
  assert.match(walked.lossy?.join('\n') ?? '', dropped);
  const prescan = UnchangedScanner.prescanning(source, [], 2);
  await prescan.prescanned;
  for (const scanned of [
    await backupTree(repository, source, { ...options, scanWorkers: 2 }),
    await backupTree(repository, source, { ...options, scanner: prescan }),
  ]) {
    assert.deepEqual(scanned.lossy, walked.lossy);
    assert.equal(scanned.root, walked.root);
  }
});

// A directory found unchanged has only its subdirectories walked; one of them may be gone (or be something else)
// by the time the walk reaches it, which leaves it out or changes its entry: the others must keep their own.
test('a subdirectory gone between the listing and the walk leaves the other entries of its directory intact', async () => {
  const repository = await testRepository(join(root, 'repo-gone'));
  const source = join(root, 'source-gone');
  for (const dir of ['a', 'b', 'c', 'd']) {
    await mkdir(join(source, dir), { recursive: true });
    await writeFile(join(source, dir, 'f'), `${dir}\n`);
  }
  for (const file of ['a-file', 'b-file', 'c-file']) await writeFile(join(source, file), `${file}\n`);
  const full = await backupTree(repository, source, { type: 'full', source: 'test' });
  const scanner = UnchangedScanner.prescanning(source, [], 2);
  await scanner.prescanned; // the root listed with b and c as directories
  await rm(join(source, 'b'), { recursive: true });
  await rm(join(source, 'c'), { recursive: true });
  await writeFile(join(source, 'c'), 'now a file\n');
  const scanned = await backupTree(repository, source, { type: 'incremental', parent: full, source: 'test', scanner });
  const walked = await backupTree(repository, source, { type: 'full', source: 'test' });
  const store = repository.chunkStore();
  const shown = async (root: ChunkId) =>
    decodeTree(await store.get(root)).entries.map(({ name, type, size }) => ({ name, type, size }));
  assert.deepEqual(await shown(scanned.root), await shown(walked.root));
  const subtree = async (root: ChunkId, name: string) =>
    decodeTree(await store.get(root)).entries.find((e) => e.name === name)?.subtree;
  const [aFull, dFull] = [await subtree(full.root, 'a'), await subtree(full.root, 'd')];
  assert.equal(await subtree(scanned.root, 'a'), aFull);
  assert.equal(await subtree(scanned.root, 'd'), dFull);
  assert.deepEqual(scanned.skipped, [{ path: '/b', reason: 'vanished while being read' }]);
});

// Large files are read into 1 MiB buffers that are read into again once the chunks holding their bytes are stored
// (source-file.ts, FileReads): a buffer reused while a chunk still views it would store the next read's bytes.
test('large files read at once are stored byte for byte (read buffers are reused only after their chunks are stored)', async () => {
  const repository = await testRepository(join(root, 'repo-large'), 'test', {
    chunker: { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 },
  });
  const source = join(root, 'source-large');
  await mkdir(source);
  const contents = ['a', 'b', 'c'].map((label) => {
    const key = Buffer.alloc(16, label);
    return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(24 * 1024 * 1024 + 12345));
  });
  for (const [i, content] of contents.entries()) await writeFile(join(source, `file-${i}`), content);
  const snapshot = await backupTree(repository, source, { type: 'full', source: 'test', parallelFiles: 3 });
  const target = join(root, 'restored-large');
  await restoreTree(repository, snapshot, target);
  for (const [i, content] of contents.entries())
    assert.ok(readFileSync(join(target, `file-${i}`)).equals(content), `file-${i} restored as backed up`);
});
