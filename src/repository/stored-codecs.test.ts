import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../../test/harness/tools.ts';
import { isCode } from '../errors.ts';
import { backupTree } from './backup.ts';
import { CODEC_BROTLI, CODEC_NONE, CODEC_ZSTD } from './compression.ts';
import { open } from './crypto.ts';
import type { ChunkLocation } from './index.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import { putEncryptedJson, putSealed } from './sealed-blob.ts';
import { FileStorage } from './storage/file.ts';
import { testRepository } from './testing/repository.ts';

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

describe('codecs and format versions of what is stored', () => {
  test('a backup writes compressible chunks with zstd (codec 1), incompressible ones as is (codec 0), and reads them back', async () => {
    const source = join(root, 'source');
    await mkdir(join(source, 'dir'), { recursive: true });
    for (const [name, data] of Object.entries(fixtureFiles())) await writeFile(join(source, name), data);
    const repository = await testRepository(join(root, 'repo'), 'codecs');
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

  test('a repository of format version 1 keeps writing JSON index files, which version 1 readers read', async () => {
    const copy = join(root, 'node20-written');
    await cp(join(repoRoot, 'test/fixtures/node20-brotli-repository'), copy, { recursive: true });
    const repository = await Repository.open(new FileStorage(copy), Buffer.from('node 20 fixture'));
    assert.equal(repository.config.version, 1);
    const source = join(root, 'more');
    await mkdir(source);
    await writeFile(join(source, 'new.txt'), 'written by this version\n'.repeat(1000));
    const before = new Set(await readdir(join(copy, 'index')));
    await backupTree(repository, source, { type: 'full', source: 'more' });
    const written = (await readdir(join(copy, 'index'))).filter((name) => !before.has(name));
    assert.equal(written.length, 1);
    const name = `index/${written[0]}`;
    const plain = open(repository.keys.encryption, await readFile(join(copy, name)), Buffer.from(name), name);
    const json = JSON.parse(plain.toString()) as { version: number; packs: { chunks: { id: string }[] }[] };
    assert.equal(json.version, 1);
    assert.ok(json.packs.flatMap((p) => p.chunks).length > 0);
    const reopened = await Repository.open(new FileStorage(copy), Buffer.from('node 20 fixture'));
    assert.equal((await reopened.snapshots()).length, 2);
  });

  test('a new repository is of format version 2 and writes binary index files', async () => {
    const repository = await Repository.open(new FileStorage(join(root, 'repo')), Buffer.from('codecs'));
    assert.equal(repository.config.version, 2);
    for (const name of await readdir(join(root, 'repo', 'index'))) {
      const blob = `index/${name}`;
      const plain = open(repository.keys.encryption, await readFile(join(root, 'repo', blob)), Buffer.from(blob), blob);
      assert.equal(plain.subarray(0, 5).toString('latin1'), 'TMIX\x02');
    }
  });

  test('an index file that decrypts but does not decode fails Corrupt, naming the file and the storage', async () => {
    const repository = await testRepository(join(root, 'bad-index'));
    const name = 'index/0badc0de';
    const body = Buffer.from([1, 0, 0, 0]); // one supersedes, cut short
    const head = Buffer.concat([Buffer.from('TMIX'), Buffer.from([2, 0]), Buffer.alloc(8)]);
    head.writeBigUInt64LE(BigInt(body.length), 6);
    await putSealed(repository.storage, repository.keys.encryption, name, Buffer.concat([head, body]));
    await assert.rejects(
      repository.readIndexFile(name),
      (e) =>
        isCode(e, 'Corrupt') && /^reading index\/0badc0de from file:.*index\/0badc0de ends/.test((e as Error).message),
    );
  });

  test('a repository of a format version this tidemark does not know is refused as Unsupported, naming it', async () => {
    const repository = await testRepository(join(root, 'future'), 'future');
    const { storage } = repository;
    await putEncryptedJson(storage, repository.keys.encryption, 'config', { ...repository.config, version: 3 });
    await assert.rejects(
      Repository.open(storage, Buffer.from('future')),
      (e) =>
        isCode(e, 'Unsupported') && /format version 3; this tidemark reads versions 1 and 2/.test((e as Error).message),
    );
  });
});
