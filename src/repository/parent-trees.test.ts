import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCode } from '../errors.ts';
import { backupTree } from './backup.ts';
import { blobNames, type ChunkId, prefixes } from './format.ts';
import { entriesOf } from './index-file.ts';
import { Repository } from './repository.ts';
import { counting } from './storage/counting.ts';
import { FileStorage } from './storage/file.ts';
import { TEST_SCRYPT } from './testing/repository.ts';
import { decodeTree } from './tree.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-parent-trees-'));
after(() => rm(root, { recursive: true, force: true }));

const GROUPS = 4;
const DIRS_PER_GROUP = 50;

test('trees go into packs of their own, so an incremental reads its parent trees a run at a time', async () => {
  const source = join(root, 'source');
  for (let g = 0; g < GROUPS; g++)
    for (let d = 0; d < DIRS_PER_GROUP; d++) {
      const dir = join(source, `group-${g}`, `dir-${d}`);
      await mkdir(dir, { recursive: true });
      for (let f = 0; f < 3; f++) await writeFile(join(dir, `doc-${f}.txt`), `group ${g} dir ${d} doc ${f}\n`);
    }
  const storage = counting(new FileStorage(join(root, 'repo')));
  const repository = await Repository.init(storage, Buffer.from('test'), { scrypt: TEST_SCRYPT });
  const full = await backupTree(repository, source, { type: 'full', source: 'docs' });

  const typesOfPacks: string[] = [];
  for await (const blob of storage.list(prefixes.index))
    for (const pack of (await repository.readIndexFile(blob.name)).packs)
      typesOfPacks.push([...new Set(entriesOf(pack.rows).map((e) => e.type))].join('+'));
  assert.deepEqual([...new Set(typesOfPacks)].sort(), ['data', 'tree'], 'no pack mixes data and trees');

  storage.reset();
  const reopened = await Repository.open(storage, Buffer.from('test'));
  const incremental = await backupTree(reopened, source, { type: 'incremental', parent: full, source: 'docs' });
  assert.equal(incremental.root, full.root, 'nothing changed: the same root tree');
  const directories = 1 + GROUPS + GROUPS * DIRS_PER_GROUP;
  const packReads = storage.reads.filter((r) => r.name.startsWith(prefixes.data)).length;
  // One read per directory before; now a read per run of up to 64 trees, and a few alone (the root, each group's).
  assert.ok(
    packReads <= 2 * GROUPS + (GROUPS * DIRS_PER_GROUP) / 16,
    `${packReads} pack reads for ${directories} directories`,
  );
});

test('a damaged parent tree among those read ahead fails the incremental naming that tree, as one read alone did', async () => {
  const source = join(root, 'damaged-source');
  for (let d = 0; d < 20; d++) {
    await mkdir(join(source, `dir-${d}`), { recursive: true });
    await writeFile(join(source, `dir-${d}`, 'doc.txt'), `dir ${d}\n`);
  }
  const storage = new FileStorage(join(root, 'damaged-repo'));
  const repository = await Repository.init(storage, Buffer.from('test'), { scrypt: TEST_SCRYPT });
  const full = await backupTree(repository, source, { type: 'full', source: 'docs' });
  const rootTree = decodeTree(await repository.chunkStore().get(full.root));
  const damaged = rootTree.entries.find((e) => e.name === 'dir-7')?.subtree as ChunkId;
  const at = repository.index.get(damaged);
  assert.ok(at);
  const pack = join(root, 'damaged-repo', blobNames.pack(at.pack));
  const bytes = await readFile(pack);
  bytes[at.offset + 20] = (bytes[at.offset + 20] as number) ^ 0x40;
  await writeFile(pack, bytes);

  const reopened = await Repository.open(storage, Buffer.from('test'));
  await assert.rejects(
    backupTree(reopened, source, { type: 'incremental', parent: full, source: 'docs' }),
    (error: Error) => isCode(error, 'Corrupt') && error.message.includes(damaged.slice(0, 12)),
  );
});
