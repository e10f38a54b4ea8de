import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../../test/harness/tools.ts';
import { backupTree } from './backup.ts';
import { CODEC_BROTLI, CODEC_NONE, CODEC_ZSTD } from './compression.ts';
import type { ChunkLocation } from './index.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import { FileStorage } from './storage/file.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-stored-codecs-'));
after(() => rm(root, { recursive: true, force: true }));

/** The content of test/fixtures/node20-brotli-repository, made the same way here. */
function fixtureFiles(): Record<string, Buffer> {
  const rows = Array.from({ length: 4000 }, (_, i) => `row ${i},customer-${i % 97},${(i * 7919) % 10007}\n`).join('');
  const key = createHash('sha256').update('fixture').digest().subarray(0, 16);
  const random = createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(65536));
  return { 'dir/rows.csv': Buffer.from(rows), 'random.bin': random };
}

/** Every stored chunk's location, from the index as a fresh open of the repository loads it. */
async function storedChunks(repository: Repository): Promise<ChunkLocation[]> {
  const { index } = await Repository.reopen(repository);
  return index.packIds().flatMap((pack) => index.chunksOf(pack).map((id) => index.get(id) as ChunkLocation));
}

async function restoredFiles(repository: Repository, into: string): Promise<Record<string, Buffer>> {
  const [snapshot] = await repository.snapshots();
  assert.ok(snapshot);
  assert.deepEqual(await restoreTree(repository, snapshot, into), []);
  const out: Record<string, Buffer> = {};
  for (const name of Object.keys(fixtureFiles())) out[name] = await readFile(join(into, name));
  return out;
}

describe('codecs of stored chunks', () => {
  test('a backup writes compressible chunks with zstd (codec 1), incompressible ones as is (codec 0), and reads them back', async () => {
    const source = join(root, 'source');
    await mkdir(join(source, 'dir'), { recursive: true });
    for (const [name, data] of Object.entries(fixtureFiles())) await writeFile(join(source, name), data);
    const repository = await Repository.init(new FileStorage(join(root, 'repo')), Buffer.from('codecs'), {
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await backupTree(repository, source, { type: 'full', source: 'codecs' });

    const locations = await storedChunks(repository);
    const data = (rawLength: number) => locations.filter((l) => l.type === 'data' && l.rawLength === rawLength);
    assert.deepEqual(
      data(fixtureFiles()['dir/rows.csv']?.length ?? 0).map((l) => l.codec),
      [CODEC_ZSTD],
      'the CSV',
    );
    assert.deepEqual(
      data(65536).map((l) => l.codec),
      [CODEC_NONE],
      'the random file',
    );
    assert.ok(
      locations.filter((l) => l.type === 'tree').every((l) => l.codec === CODEC_ZSTD),
      'trees (JSON) are zstd',
    );
    assert.deepEqual(await restoredFiles(repository, join(root, 'restored')), fixtureFiles());
  });

  test('a repository written on Node 20 (brotli, codec 2) still restores', async () => {
    const copy = join(root, 'node20');
    // A copy: restoring takes a lock, which writes into the repository.
    await cp(join(repoRoot, 'test/fixtures/node20-brotli-repository'), copy, { recursive: true });
    const repository = await Repository.open(new FileStorage(copy), Buffer.from('node 20 fixture'));
    const codecs = new Set((await storedChunks(repository)).map((l) => l.codec));
    assert.deepEqual([...codecs].sort(), [CODEC_NONE, CODEC_BROTLI], 'the fixture holds brotli chunks');
    assert.deepEqual(await restoredFiles(repository, join(root, 'restored-node20')), fixtureFiles());
  });
});
