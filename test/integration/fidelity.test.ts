// Issue 10 finding 8: files come back exactly. A restored tree is compared with its source on every property a
// volume backup keeps (docs/repository-format.md, "File metadata"): type, mode, owner, nanosecond atime and
// mtime (also before 1970), extended attributes, symlink targets, hard links, sparse allocation, empty
// directories and odd names. The source's times and extended attributes are set, and the restored ones read, with
// Python's os module, not the backup's own helper. Real file storage.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, open, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupTree } from '../../src/repository/backup.ts';
import type { ChainId, SnapshotId } from '../../src/repository/format.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreTree } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { FileStorage } from '../../src/repository/storage/file.ts';
import { pseudoRandomBuffer, sha256File } from '../harness/fixtures.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('fidelity');
const passphrase = Buffer.from('correct horse battery staple');
let counter = 0;

before(async () => {
  await chmod(workDir.path, 0o755); // the unreadable-file test runs its backup as nobody
});
after(() => workDir.remove());

/** A directory anyone may write (made by the test's own user), for a repository. */
async function repositoryDir(): Promise<string> {
  const dir = join(workDir.path, `repo-${++counter}`);
  await mkdir(dir);
  await chmod(dir, 0o777);
  return dir;
}

const initAt = (dir: string) => Repository.init(new FileStorage(dir), passphrase, { scrypt: { N: 1024, r: 8, p: 1 } });
const newRepository = async () => initAt(await repositoryDir());

/** Sets atime and mtime (ns) through Python's os.utime, symlinks themselves: `[path, atimeNs, mtimeNs]`. */
function setTimes(times: [Buffer | string, bigint, bigint][]): void {
  const script = `
import os, sys, json
for path, atime, mtime in json.load(sys.stdin):
    os.utime(bytes.fromhex(path), ns=(int(atime), int(mtime)), follow_symlinks=False)`;
  const input = JSON.stringify(times.map(([path, a, m]) => [Buffer.from(path).toString('hex'), `${a}`, `${m}`]));
  execFileSync('python3', ['-c', script], { input });
}

/** Extended attributes through Python's os module: `{ path: { name: hex value } }` for every path under root. */
function pythonXattrs(root: string): Record<string, Record<string, string>> {
  const script = `
import os, sys, json
root = os.fsencode(sys.argv[1]); out = {}
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        path = os.path.join(dirpath, name)
        attrs = {a: os.getxattr(path, a, follow_symlinks=False).hex() for a in os.listxattr(path, follow_symlinks=False)}
        if attrs: out[os.path.relpath(path, root).hex()] = attrs
print(json.dumps(out))`;
  return JSON.parse(execFileSync('python3', ['-c', script, root]).toString());
}

function setXattr(path: string, name: string, value: Buffer): void {
  execFileSync('python3', [
    '-c',
    'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)',
    path,
    name,
    value.toString('hex'),
  ]);
}

/**
 * Per path (hex, so any bytes compare): type, mode, owner, mtime in ns (and atime for files), size and content
 * hash or link target, and which paths share an inode.
 */
async function describeExactly(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const inodes = new Map<bigint, string>();
  const walk = async (dir: Buffer, rel: string) => {
    for (const name of (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = `${rel}/${name.toString('hex')}`;
      const s = await lstat(path, { bigint: true });
      const common = `${(s.mode & 0o7777n).toString(8)} ${s.uid}:${s.gid} m=${s.mtimeNs}`;
      if (s.isDirectory()) {
        await walk(path, key);
        out[key] = `dir ${common}`;
      } else if (s.isSymbolicLink()) {
        out[key] = `symlink ${common} -> ${(await readlink(path, { encoding: 'buffer' })).toString('hex')}`;
      } else {
        const sameAs = s.nlink > 1n ? inodes.get(s.ino) : undefined;
        if (s.nlink > 1n && !sameAs) inodes.set(s.ino, key);
        out[key] =
          `file ${common} a=${s.atimeNs} ${s.size} ${await sha256File(path)}${sameAs ? ` hardlink-of ${sameAs}` : ''}`;
      }
    }
  };
  await walk(Buffer.from(root), '');
  return out;
}

const MiB = 1024 * 1024;
/** Future access times: reading a file under relatime then leaves them alone (atime > ctime, not a day old). */
const future = (n: number) => 2_000_000_000_123_456_789n + BigInt(n) * 1_000_000_001n;

async function makeSource(root: string): Promise<void> {
  await mkdir(join(root, 'docs', 'empty-dir'), { recursive: true });
  await mkdir(join(root, 'private'), { mode: 0o700 });
  await writeFile(join(root, 'docs', 'readme.txt'), 'hello\n');
  await writeFile(join(root, 'docs', 'data.bin'), await pseudoRandomBuffer('fidelity', 3 * MiB + 5));
  await writeFile(join(root, 'private', 'secret'), 'secret');
  await chmod(join(root, 'private', 'secret'), 0o600);
  await writeFile(join(root, 'script.sh'), '#!/bin/sh\n');
  await chmod(join(root, 'script.sh'), 0o4755);
  await writeFile(join(root, 'read-only'), 'r');
  await chmod(join(root, 'read-only'), 0o444);
  await writeFile(join(root, 'owned'), 'o');
  await chown(join(root, 'owned'), 1234, 5678);
  await writeFile(join(root, 'empty'), '');
  // Odd names: not UTF-8, a newline, a leading dash, spaces, the longest a name may be (255 bytes).
  const odd = [
    Buffer.from([0x63, 0x61, 0x66, 0xe9]),
    Buffer.from('new\nline'),
    Buffer.from('-dash x'),
    'é'.repeat(127),
  ];
  for (const name of odd) await writeFile(Buffer.concat([Buffer.from(`${root}/docs/`), Buffer.from(name)]), 'odd');
  // Hard links across directories.
  await link(join(root, 'docs', 'readme.txt'), join(root, 'private', 'readme-link'));
  await link(join(root, 'docs', 'readme.txt'), join(root, 'readme-link-2'));
  // Symlinks: relative, dangling, a target that is not UTF-8.
  await symlink('docs/readme.txt', join(root, 'link'));
  await symlink('/nonexistent/target', join(root, 'dangling'));
  await symlink(Buffer.from([0x2e, 0x2f, 0xff]), Buffer.from(join(root, 'odd-target')));
  // Sparse: 64 MiB with 4 KiB at the start and 1 MiB in the middle; the rest holes.
  const sparse = await open(join(root, 'sparse.img'), 'w');
  await sparse.write(Buffer.alloc(4096, 1), 0, 4096, 0);
  await sparse.write(await pseudoRandomBuffer('middle', MiB), 0, MiB, 20 * MiB);
  await sparse.truncate(64 * MiB);
  await sparse.close();
  // Extended attributes: binary and empty values, on a file and a directory; trusted.* is not kept (lossy).
  setXattr(join(root, 'docs', 'readme.txt'), 'user.binary', Buffer.from([0, 1, 2, 255]));
  setXattr(join(root, 'docs', 'readme.txt'), 'user.empty', Buffer.alloc(0));
  setXattr(join(root, 'docs'), 'user.checksum', Buffer.from('sha256:abc'));
  setXattr(join(root, 'read-only'), 'trusted.note', Buffer.from('host only'));

  // Times last, deepest first (setting them changes nothing else): nanoseconds, and before 1970.
  const paths: Buffer[] = [];
  const collect = async (dir: Buffer) => {
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      if ((await lstat(path)).isDirectory()) await collect(path);
      paths.push(path);
    }
  };
  await collect(Buffer.from(root));
  setTimes(
    paths.map((path, i) => [
      path,
      future(i),
      i % 3 === 0 ? -315_360_000_987_654_321n - BigInt(i) : 1_700_000_000_100_000_007n + BigInt(i) * 1_000_000_001n,
    ]),
  );
}

describe('a restored tree is the source, exactly', () => {
  test('mode, owner, ns mtime (also before 1970) and file atime, xattrs, symlinks, hard links, sparse files, empty directories, odd names', async () => {
    const source = join(workDir.path, 'source');
    await makeSource(source);
    const expected = await describeExactly(source);
    const expectedXattrs = pythonXattrs(source);
    const sourceBlocks = (await lstat(join(source, 'sparse.img'))).blocks;

    const repository = await newRepository();
    const snapshot = await backupTree(repository, source, { type: 'full', source: 'test' });

    const target = join(workDir.path, 'restored');
    await restoreTree(repository, snapshot, target);
    assert.deepEqual(await describeExactly(target), expected);
    const kept = structuredClone(expectedXattrs);
    for (const attrs of Object.values(kept)) delete attrs['trusted.note'];
    for (const [path, attrs] of Object.entries(kept)) if (Object.keys(attrs).length === 0) delete kept[path];
    assert.deepEqual(pythonXattrs(target), kept);
    assert.equal(Object.keys(kept).length, 4, 'docs, and readme.txt under its three names');

    const restoredBlocks = (await lstat(join(target, 'sparse.img'))).blocks;
    assert.ok(
      restoredBlocks <= sourceBlocks + 64,
      `sparse.img allocates ${restoredBlocks * 512} bytes restored, ${sourceBlocks * 512} in the source`,
    );
    assert.deepEqual(snapshot.skipped, undefined);
    assert.deepEqual(snapshot.lossy, ['extended attributes outside user.* and POSIX ACLs not kept: trusted.note']);
  });
});

describe('what a backup reads', () => {
  test('an incremental notices a content change that kept size, mtime and inode (ctime changed)', async () => {
    const source = join(workDir.path, 'ctime');
    await mkdir(source);
    const file = join(source, 'config');
    await writeFile(file, 'version=1');
    setTimes([[file, future(0), 1_700_000_000_500_000_000n]]);
    const repository = await newRepository();
    const full = await backupTree(repository, source, { type: 'full', source: 'ctime' });
    const fd = await open(file, 'r+');
    await fd.write('version=2', 0);
    await fd.close();
    setTimes([[file, future(0), 1_700_000_000_500_000_000n]]);
    const incremental = await backupTree(repository, source, { type: 'incremental', parent: full, source: 'ctime' });
    const target = join(workDir.path, 'ctime-restored');
    await restoreTree(repository, incremental, target);
    assert.equal(await sha256File(join(target, 'config')), createHash('sha256').update('version=2').digest('hex'));
  });

  test('a path longer than PATH_MAX is skipped with its reason; the rest is backed up', async () => {
    const source = join(workDir.path, 'deep');
    await mkdir(source);
    await writeFile(join(source, 'shallow'), 'kept');
    const segment = 'd'.repeat(250);
    const cwd = process.cwd();
    let depth = 0;
    try {
      process.chdir(source);
      for (; depth < 20; depth++) {
        await mkdir(segment);
        process.chdir(segment);
      }
      await writeFile('deepest', 'too deep');
    } finally {
      process.chdir(cwd);
    }
    try {
      const repository = await newRepository();
      const snapshot = await backupTree(repository, source, { type: 'full', source: 'deep' });
      const skipped = snapshot.skipped ?? [];
      assert.equal(skipped.length, 1, JSON.stringify(skipped));
      assert.match(skipped[0]?.reason ?? '', /PATH_MAX/);
      assert.ok((skipped[0]?.path.length ?? 0) > 4096 - source.length - 260);
      const target = join(workDir.path, 'deep-restored');
      await restoreTree(repository, snapshot, target);
      assert.equal(await sha256File(join(target, 'shallow')), createHash('sha256').update('kept').digest('hex'));
    } finally {
      execFileSync('rm', ['-rf', source]); // coreutils rm walks paths of any length
    }
  });

  test('a hard-link group that cannot be read is skipped whole, every name listed', async () => {
    const source = join(workDir.path, 'unreadable');
    await mkdir(join(source, 'a'), { recursive: true });
    await mkdir(join(source, 'b'));
    await writeFile(join(source, 'a', 'secret'), 'root only');
    await chmod(join(source, 'a', 'secret'), 0o600);
    await link(join(source, 'a', 'secret'), join(source, 'b', 'secret-link'));
    await writeFile(join(source, 'b', 'public'), 'anyone');
    // As nobody when run as root (root reads everything), so that permissions apply.
    const asRoot = process.getuid?.() === 0;
    const dir = await repositoryDir();
    if (asRoot) {
      process.setegid?.(65534);
      process.seteuid?.(65534);
    }
    let snapshot: Snapshot;
    let repository: Repository;
    try {
      repository = await initAt(dir);
      snapshot = await backupTree(repository, source, { type: 'full', source: 'unreadable' });
    } finally {
      if (asRoot) {
        process.seteuid?.(0);
        process.setegid?.(0);
      }
    }
    assert.deepEqual(snapshot.skipped, [
      { path: '/a/secret', reason: 'permission denied' },
      { path: '/b/secret-link', reason: 'hard link of /a/secret, which could not be read (permission denied)' },
    ]);
    const target = join(workDir.path, 'unreadable-restored');
    await restoreTree(repository, snapshot, target);
    assert.deepEqual(await readdir(join(target, 'b')), ['public']);
    assert.deepEqual(await readdir(join(target, 'a')), []);
  });
});

/** A snapshot of one tree written as given (a tree shape no current backup writes). */
async function handWrittenSnapshot(
  repository: Repository,
  entries: (chunkOf: (data: string) => Promise<string>) => Promise<object[]>,
): Promise<Snapshot> {
  const chain = 'a'.repeat(32) as ChainId;
  const store = repository.chunkStore();
  const tree = { entries: await entries(async (data) => (await store.put(chain, 'data', Buffer.from(data))).id) };
  const root = await store.put(chain, 'tree', Buffer.from(JSON.stringify(tree)));
  await repository.saveIndex(await store.flush());
  const snapshot: Snapshot = {
    version: 1,
    id: randomBytes(32).toString('hex') as SnapshotId,
    time: new Date().toISOString(),
    hostname: 'old',
    source: 'old',
    type: 'full',
    chainId: chain,
    tags: [],
    root: root.id,
    summary: {
      files: 1,
      dirs: 1,
      logicalBytes: 3,
      chunks: 1,
      newChunks: 1,
      newBytes: 3,
      uploadedBytes: 0,
      durationMs: 1,
    },
  };
  await repository.saveSnapshot(snapshot);
  return snapshot;
}

describe('older repositories, and targets that refuse metadata', () => {
  test('a tree written in the version 1 shape restores, and an incremental over it backs up the current content', async () => {
    const repository = await newRepository();
    const old = await handWrittenSnapshot(repository, async (chunkOf) => [
      {
        name: 'f',
        type: 'file',
        mode: 0o640,
        mtimeNs: '-1000',
        uid: 0,
        gid: 0,
        size: 3,
        content: [await chunkOf('old')],
        inode: 1,
      },
    ]);
    const target = join(workDir.path, 'v1-restored');
    assert.deepEqual(await restoreTree(repository, old, target), []);
    const restored = await lstat(join(target, 'f'), { bigint: true });
    assert.equal(restored.mtimeNs, -1000n);
    assert.equal(restored.atimeNs, -1000n, 'no atime stored: the mtime');
    assert.equal(restored.mode & 0o777n, 0o640n);

    const source = join(workDir.path, 'v1-source');
    await mkdir(source);
    await writeFile(join(source, 'f'), 'new');
    const incremental = await backupTree(repository, source, { type: 'incremental', parent: old, source: 'old' });
    const again = join(workDir.path, 'v1-again');
    await restoreTree(repository, incremental, again);
    assert.equal(await sha256File(join(again, 'f')), createHash('sha256').update('new').digest('hex'));
  });

  test('an extended attribute the target refuses is reported, and the rest restores', async () => {
    const repository = await newRepository();
    // Linux allows no user.* attribute on a symlink (EPERM): a target that refuses one.
    const xattrs = [{ name: 'user.origin', valueB64: Buffer.from('elsewhere').toString('base64') }];
    const snapshot = await handWrittenSnapshot(repository, async (chunkOf) => [
      {
        name: 'f',
        type: 'file',
        mode: 0o600,
        mtimeNs: '1',
        uid: 0,
        gid: 0,
        size: 3,
        content: [await chunkOf('abc')],
        xattrs,
      },
      { name: 'l', type: 'symlink', mode: 0o777, mtimeNs: '2', uid: 0, gid: 0, target: 'f', xattrs },
    ]);
    const target = join(workDir.path, 'refused');
    assert.deepEqual(await restoreTree(repository, snapshot, target), [
      { path: '/l', reason: 'extended attribute user.origin not restored (EPERM)' },
    ]);
    assert.deepEqual(pythonXattrs(target), {
      [Buffer.from('f').toString('hex')]: { 'user.origin': Buffer.from('elsewhere').toString('hex') },
    });
    assert.equal(await readlink(join(target, 'l')), 'f');
  });
});
