import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { prefixes } from './format.ts';
import { entriesOf } from './index-file.ts';
import { Repository } from './repository.ts';
import { counting } from './storage/counting.ts';
import { FileStorage } from './storage/file.ts';
import { TEST_SCRYPT } from './testing/repository.ts';

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
