import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { auditTree } from './audit-tree.ts';
import { backupTree } from './backup.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-audit-tree-'));
after(() => rm(root, { recursive: true, force: true }));

async function backedUp(dir: string, excludes: string[] = []) {
  const repository = await testRepository(join(root, `repo-${Math.random().toString(36).slice(2)}`));
  const snapshot = await backupTree(repository, dir, { type: 'full', source: 'test', excludes });
  return { repository, snapshot };
}

test('a directory created since lists every file under it; one removed lists every file it held', async () => {
  const dir = join(root, 'dirs');
  await mkdir(join(dir, 'old/deep'), { recursive: true });
  await writeFile(join(dir, 'old/deep/a'), 'a');
  await writeFile(join(dir, 'old/b'), 'b');
  const { repository, snapshot } = await backedUp(dir);
  await rm(join(dir, 'old'), { recursive: true });
  await mkdir(join(dir, 'new/deep'), { recursive: true });
  await writeFile(join(dir, 'new/deep/c'), 'c');
  const audit = await auditTree(repository.chunkStore(), snapshot.root, dir);
  assert.deepEqual(audit.missing, { items: ['/new/deep/c'], total: 1 });
  assert.deepEqual(audit.removed, { items: ['/old/b', '/old/deep/a'], total: 2 });
  assert.equal(audit.liveFiles, 1);
});

test('a file that became a directory is removed and its files missing; a symlink pointing elsewhere changed', async () => {
  const dir = join(root, 'types');
  await mkdir(dir);
  await writeFile(join(dir, 'x'), 'file');
  await symlink('x', join(dir, 'link'));
  const { repository, snapshot } = await backedUp(dir);
  await unlink(join(dir, 'x'));
  await mkdir(join(dir, 'x'));
  await writeFile(join(dir, 'x/inner'), 'i');
  await unlink(join(dir, 'link'));
  await symlink('x/inner', join(dir, 'link'));
  const audit = await auditTree(repository.chunkStore(), snapshot.root, dir);
  assert.deepEqual(audit.removed.items, ['/x']);
  assert.deepEqual(audit.missing.items, ['/x/inner']);
  assert.deepEqual(audit.changed.items, [{ path: '/link', change: 'target' }]);
});

test('excluded paths are left out on both sides; lists stop at the limit, totals do not', async () => {
  const dir = join(root, 'bounded');
  await mkdir(join(dir, 'cache'), { recursive: true });
  await writeFile(join(dir, 'kept'), 'k');
  const { repository, snapshot } = await backedUp(dir, ['cache']);
  for (let i = 0; i < 5; i++) await writeFile(join(dir, `new-${i}`), `${i}`);
  await writeFile(join(dir, 'cache/blob'), 'excluded');
  const audit = await auditTree(repository.chunkStore(), snapshot.root, dir, { excludes: ['cache'], limit: 2 });
  assert.deepEqual(audit.missing, { items: ['/new-0', '/new-1'], total: 5 });
  assert.equal(audit.liveFiles, 6);
});
