import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileStorage } from './file.ts';
import { runStorageConformance } from './storage.conformance.ts';

let root: string;
let opened = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-file-storage-'));
});
after(() => rm(root, { recursive: true, force: true }));

const fresh = async (options?: { fsync?: boolean }) => {
  const storage = new FileStorage(join(root, `repo-${++opened}`), options);
  await storage.ensureContainer();
  return storage;
};

runStorageConformance('file', () => fresh(), {
  missingContainer: async () => new FileStorage(join(root, `missing-${++opened}`, 'repo')),
});
runStorageConformance('file with fsync', () => fresh({ fsync: true }), {
  missingContainer: async () => new FileStorage(join(root, `missing-${++opened}`), { fsync: true }),
});

describe('FileStorage', () => {
  test('leaves no temporary file behind and skips those of interrupted puts', async () => {
    const dir = join(root, `repo-${++opened}`);
    const storage = new FileStorage(dir);
    await storage.ensureContainer();
    await storage.put('packs/p1', Buffer.from('pack'));
    assert.deepEqual(await readdir(join(dir, 'packs')), ['p1']);
    await writeFile(join(dir, 'packs', '.0123abcd~'), 'half a pack');
    const listed = [];
    for await (const blob of storage.list('')) listed.push(blob.name);
    assert.deepEqual(listed, ['packs/p1']);
  });

  test('refuses names that could leave the root directory', async () => {
    const storage = await fresh();
    for (const name of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'A', './x'])
      await assert.rejects(storage.get(name), { code: 'InvalidArgument' }, name);
    await assert.rejects(
      async () => {
        for await (const _ of storage.list('../')) assert.fail('listed outside the root');
      },
      { code: 'InvalidArgument' },
    );
  });
});
