// verifyRestoredTree: a restore drill of a volume re-reads what was restored and compares it with the
// snapshot (sizes, content by chunk id, symlink targets, hard links), naming every path that differs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, open, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupTree } from './backup.ts';
import type { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import type { Snapshot } from './snapshot.ts';
import { testRepository } from './testing/repository.ts';
import { verifyRestoredTree } from './verify-tree.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-verify-tree-'));
after(() => rm(root, { recursive: true, force: true }));
let repository: Repository;
let snapshot: Snapshot;
let restores = 0;
const ODD = Buffer.from('odd\n\xff name', 'latin1'); // not UTF-8, with a newline

before(async () => {
  repository = await testRepository(join(root, 'repo'), 'verify', { chunker: { min: 1024, avg: 4096, max: 16384 } });
  const source = join(root, 'source');
  await mkdir(join(source, 'dir/deeper'), { recursive: true });
  await writeFile(join(source, 'big.bin'), randomBytes(200_000)); // dozens of chunks
  await writeFile(join(source, 'empty'), '');
  await writeFile(join(source, 'dir/deeper/note.txt'), 'hello');
  await writeFile(Buffer.from(`${source}/${ODD.toString('latin1')}`, 'latin1'), 'odd');
  await writeFile(Buffer.concat([Buffer.from(`${source}/dir/`), ODD]), 'odd name, not UTF-8');
  await symlink('dir/deeper/note.txt', join(source, 'link'));
  await link(join(source, 'dir/deeper/note.txt'), join(source, 'hard'));
  snapshot = await backupTree(repository, source, { type: 'full', source: 'volume' });
});

async function restored(): Promise<string> {
  const target = join(root, `restored-${++restores}`);
  await restoreTree(repository, snapshot, target);
  return target;
}

test('a faithful restore matches: every file re-read, nothing reported', async () => {
  const result = await verifyRestoredTree(repository, snapshot, await restored());
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.mismatchCount, 0);
  assert.equal(result.files, 6);
  assert.equal(result.symlinks, 1);
  assert.equal(result.dirs, 3);
  assert.equal(result.bytes, 200_000 + 5 + 3 + 19);
});

test('one byte flipped in a file: that file is named, with where it differs', async () => {
  const target = await restored();
  const file = await open(join(target, 'big.bin'), 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 123_456);
  await file.write(Buffer.from([(byte[0] as number) ^ 0x01]), 0, 1, 123_456);
  await file.close();
  const result = await verifyRestoredTree(repository, snapshot, target);
  assert.equal(result.mismatchCount, 1);
  assert.equal(result.mismatches[0]?.path, '/big.bin');
  assert.match(result.mismatches[0]?.reason ?? '', /content differs from the snapshot in bytes \d+\.\.\d+/);
});

test('sizes, symlink targets, missing, extra and odd names are each reported, the list bounded', async () => {
  const target = await restored();
  await writeFile(join(target, 'dir/deeper/note.txt'), 'hello!'); // `/hard` shares its inode: checked once
  await unlink(join(target, 'link'));
  await symlink('elsewhere', join(target, 'link'));
  await unlink(join(target, 'empty'));
  await writeFile(join(target, 'extra'), 'x');
  await writeFile(Buffer.concat([Buffer.from(`${target}/dir/`), ODD]), 'odd name, not UTF-8 but changed');
  const result = await verifyRestoredTree(repository, snapshot, target);
  const odd = `/dir/${ODD.toString('utf8')}`;
  assert.deepEqual(
    result.mismatches.map((m) => [m.path, m.reason]).sort(),
    [
      ['/dir/deeper/note.txt', '6 bytes, 5 in the snapshot'],
      [odd, '31 bytes, 19 in the snapshot'],
      ['/empty', 'file missing'],
      ['/extra', 'not in the snapshot'],
      ['/link', 'symlink target differs'],
    ].sort(),
  );
  const bounded = await verifyRestoredTree(repository, snapshot, target, { limit: 2 });
  assert.equal(bounded.mismatchCount, 5);
  assert.equal(bounded.mismatches.length, 2);
});

test('a hard link restored as a separate copy is named', async () => {
  const target = await restored();
  await unlink(join(target, 'hard'));
  await writeFile(join(target, 'hard'), 'hello');
  const result = await verifyRestoredTree(repository, snapshot, target);
  assert.deepEqual(result.mismatches, [{ path: '/hard', reason: 'not a hard link of its group' }]);
});
