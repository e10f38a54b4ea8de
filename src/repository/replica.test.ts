// Replicas sharing the primary's chunk identity (R-REPL, issue 14): a copy reads from the primary only
// the trees and the chunks the replica lacks; replicas with their own id key keep the re-identifying copy.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { describeTree, pseudoRandomBuffer } from '../../test/harness/fixtures.ts';
import { isCode, TidemarkError } from '../errors.ts';
import { backupTree } from './backup.ts';
import { check } from './check.ts';
import { copySnapshots } from './copy.ts';
import { blobNames, prefixes } from './format.ts';
import { openReplica } from './replica.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import { getEncryptedJson } from './sealed-blob.ts';
import type { Snapshot } from './snapshot.ts';
import { type CountingStorage, counting } from './storage/counting.ts';
import { faulty } from './storage/faulty.ts';
import { FileStorage } from './storage/file.ts';
import type { Storage } from './storage/storage.ts';
import { TEST_SCRYPT } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-replica-'));
after(() => rm(root, { recursive: true, force: true }));
const primaryKey = Buffer.from('primary passphrase');
const replicaKey = Buffer.from('replica passphrase');
const options = { scrypt: TEST_SCRYPT, chunker: { min: 4096, avg: 16384, max: 65536 } };
const FILES = 16;
const FILE_SIZE = 256 * 1024;

let primaryStorage: CountingStorage;
let primary: Repository;
let full: Snapshot;
/** The same source with 1% of its bytes rewritten (40 KiB in the middle of one file). */
let changed: Snapshot;
const source = join(root, 'source');
const sourceChanged = join(root, 'source-changed');

before(async () => {
  await mkdir(source, { recursive: true });
  for (let i = 0; i < FILES; i++)
    await writeFile(join(source, `f${i}.bin`), await pseudoRandomBuffer(`file ${i}`, FILE_SIZE));
  await cp(source, sourceChanged, { recursive: true });
  const file = await pseudoRandomBuffer('file 7', FILE_SIZE);
  (await pseudoRandomBuffer('the change', (FILES * FILE_SIZE) / 100)).copy(file, 100_000);
  await writeFile(join(sourceChanged, 'f7.bin'), file);

  primaryStorage = counting(new FileStorage(join(root, 'primary')));
  primary = await Repository.init(primaryStorage, primaryKey, options);
  full = await backupTree(primary, source, { type: 'full', source: 'files' });
  changed = await backupTree(primary, sourceChanged, { type: 'incremental', parent: full, source: 'files' });
});

const storageAt = (name: string) => new FileStorage(join(root, name));

/** Copies `snapshot` into `replica`, returning the bytes read from the primary's packs and all its blobs. */
async function copyCounting(replica: Repository, snapshot: Snapshot) {
  primaryStorage.reset();
  const report = await copySnapshots(await Repository.open(primaryStorage, primaryKey), replica, [snapshot]);
  return { report, packBytes: primaryStorage.bytesRead(prefixes.data), allBytes: primaryStorage.bytesRead() };
}

async function assertRestoresIdentical(storage: Storage, dir: string, snapshot: Snapshot): Promise<void> {
  const replica = await Repository.open(storage, replicaKey);
  assert.deepEqual((await check(replica, { readData: true })).errors, [], 'check --read-data of the replica');
  const target = join(root, `restored-${snapshot.id.slice(0, 8)}-${Math.random().toString(16).slice(2)}`);
  await restoreTree(replica, await replica.findSnapshot(snapshot.id), target);
  assert.deepEqual(await describeTree(target), await describeTree(dir));
}

test('a replica created from its primary shares its chunk identity, never its encryption key', async () => {
  const storage = storageAt('fresh-replica');
  const replica = await openReplica(primary, storage, replicaKey);
  assert.ok(replica.keys.chunkId.equals(primary.keys.chunkId), 'same chunk-id key');
  assert.ok(replica.keys.chunkerSeed.equals(primary.keys.chunkerSeed), 'same chunker seed');
  assert.deepEqual(replica.config.chunker, primary.config.chunker, 'same chunker sizes');
  assert.ok(!replica.keys.encryption.equals(primary.keys.encryption), 'its own encryption key');
  assert.notEqual(replica.config.id, primary.config.id);
  // One repository's encryption key opens nothing of the other's, and each passphrase opens only its own.
  await assert.rejects(getEncryptedJson(primaryStorage, replica.keys.encryption, blobNames.config));
  await assert.rejects(getEncryptedJson(storage, primary.keys.encryption, blobNames.config));
  await assert.rejects(Repository.open(storage, primaryKey), (e) => isCode(e, 'WrongKey'));
});

test('replicating a 1% change reads from the primary only the trees and the changed chunks', async () => {
  const storage = storageAt('shared-replica');
  const replica = await openReplica(primary, storage, replicaKey);
  const first = await copyCounting(replica, full);
  assert.equal(first.report.identity, 'shared');
  const logical = full.summary.logicalBytes;
  assert.ok(first.packBytes >= logical, `the first copy reads every chunk (${first.packBytes} of ${logical})`);

  const second = await copyCounting(await Repository.open(storage, replicaKey), changed);
  assert.equal(second.report.identity, 'shared');
  // 40 KiB changed: at most a few chunks (<= 64 KiB each) either side of it, plus the trees.
  assert.ok(second.packBytes >= 40 * 1024, `the changed chunks are read (${second.packBytes} bytes)`);
  assert.ok(
    second.packBytes < logical / 20,
    `a 1% change reads ${second.packBytes} bytes of packs from the primary, not the ${logical}-byte snapshot`,
  );
  assert.ok(second.allBytes < logical / 10, `${second.allBytes} bytes read from the primary in all`);
  await assertRestoresIdentical(storage, source, full);
  await assertRestoresIdentical(storage, sourceChanged, changed);
});

test('a replica with its own chunk-id key keeps working: every chunk is read and re-identified', async () => {
  const storage = storageAt('own-identity-replica');
  const own = await Repository.init(storage, replicaKey, options);
  await copySnapshots(primary, own, [full]);
  // It holds data now, so it is not converted: its chunks keep their ids.
  const replica = await openReplica(primary, storage, replicaKey);
  assert.ok(replica.keys.chunkId.equals(own.keys.chunkId), 'it keeps its own id key');
  const second = await copyCounting(replica, changed);
  assert.equal(second.report.identity, 'reidentified');
  assert.ok(second.packBytes >= changed.summary.logicalBytes, 'the re-identifying path reads the whole snapshot');
  assert.ok(second.report.uploadedBytes < changed.summary.logicalBytes / 10, 'but uploads only what changed');
  await assertRestoresIdentical(storage, source, full);
  await assertRestoresIdentical(storage, sourceChanged, changed);
});

test('an empty replica initialised on its own (by the probe) adopts the primary’s identity on the first copy', async () => {
  const storage = storageAt('probed-replica');
  const probed = await Repository.init(storage, replicaKey, options);
  const replica = await openReplica(primary, storage, replicaKey);
  assert.ok(replica.keys.chunkId.equals(primary.keys.chunkId), 'adopted the chunk-id key');
  assert.ok(replica.keys.encryption.equals(probed.keys.encryption), 'kept its own encryption key');
  assert.equal(replica.config.id, probed.config.id, 'the same repository');
  const keyFiles: string[] = [];
  for await (const blob of storage.list(prefixes.keys)) keyFiles.push(blob.name);
  assert.equal(keyFiles.length, 1, 'the old key file is gone');
  // A process that opened the old keys cannot write ids nobody could verify: its next lock fails.
  await assert.rejects(probed.lock(false), (e) => isCode(e, 'Transient') && /keys .* changed/.test(String(e)));
  assert.equal((await copyCounting(replica, full)).report.identity, 'shared');
  await assertRestoresIdentical(storage, source, full);
});

test('a replica whose chunker sizes differ from the primary’s keeps its own identity', async () => {
  const storage = storageAt('other-sizes-replica');
  await Repository.init(storage, replicaKey, { ...options, chunker: { min: 2048, avg: 8192, max: 32768 } });
  const replica = await openReplica(primary, storage, replicaKey);
  assert.ok(!replica.sharesChunkIdentityWith(primary));
  assert.equal((await copyCounting(replica, full)).report.identity, 'reidentified');
  await assertRestoresIdentical(storage, source, full);
});

test('an empty replica whose credentials may not delete key files keeps its own identity (never two identities)', async () => {
  const storage = faulty(storageAt('no-delete-replica'));
  const probed = await Repository.init(storage, replicaKey, options);
  storage.inject('delete', { error: new TidemarkError('AccessDenied', 'injected: no DeleteObject on keys/') });
  const replica = await openReplica(primary, storage, replicaKey);
  assert.equal(storage.calls('delete'), 1, 'only asked');
  assert.ok(replica.keys.chunkId.equals(probed.keys.chunkId), 'it keeps its own id key');
  const keyFiles: string[] = [];
  for await (const blob of storage.list(prefixes.keys)) keyFiles.push(blob.name);
  assert.equal(keyFiles.length, 1, 'and one key file');
  assert.equal((await copyCounting(replica, full)).report.identity, 'reidentified');
  await assertRestoresIdentical(storage, source, full);
});
