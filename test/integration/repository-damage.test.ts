// Damage isolation, check, repair and housekeeping (issue 10, findings 4-6): a flipped byte, a zero length or a
// deletion in each kind of object affects only the snapshots that need it; every other snapshot still lists and
// restores, `check` names the damaged object and the snapshots (and paths) it costs, and `repo repair index`
// brings back what a damaged or deleted index file hid. File storage, one S3 case.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, open, readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildProgram } from '../../src/cli/main.ts';
import { isCode } from '../../src/errors.ts';
import { backupTree } from '../../src/repository/backup.ts';
import { check } from '../../src/repository/check.ts';
import { blobNames, idOf, type PackId, prefixes } from '../../src/repository/format.ts';
import { findCrashLeftovers, removeCrashLeftovers } from '../../src/repository/housekeeping.ts';
import { wrapMasterKeys } from '../../src/repository/keys.ts';
import { forget, prune } from '../../src/repository/prune.ts';
import { repairIndex } from '../../src/repository/repair.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreTree } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import type { Storage } from '../../src/repository/storage/storage.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { describeTree, pseudoRandomBuffer } from '../harness/fixtures.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('repository-damage');
const passphrase = Buffer.from('correct horse battery staple');
const secondPassphrase = Buffer.from('second key of the same repository');
const scrypt = { N: 1024, r: 8, p: 1 };
const pristine = join(workDir.path, 'pristine');
let cases = 0;

/** The three snapshots: chain A (full, then an incremental sharing its chunks) and chain B (full). */
interface Fixture {
  snapshot: Snapshot;
  expected: Record<string, string>;
  /** Blobs its backup added. */
  indexFiles: string[];
  packs: string[];
  /** Its packs of file data, and of trees (a backup writes them apart). */
  dataPacks: string[];
  treePacks: string[];
}
const fixtures: Record<'aFull' | 'b' | 'aIncremental', Fixture> = {} as never;
let keyNames: string[] = [];

async function names(storage: Storage, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const blob of storage.list(prefix)) found.push(blob.name);
  return found.sort();
}

async function backUp(repository: Repository, source: string, parent?: Snapshot): Promise<Fixture> {
  const [indexBefore, packsBefore] = [
    await names(repository.storage, 'index/'),
    await names(repository.storage, 'data/'),
  ];
  const snapshot = await backupTree(repository, source, {
    type: parent ? 'incremental' : 'full',
    source: `file://${source}`,
    ...(parent ? { parent } : {}),
  });
  const packs = (await names(repository.storage, 'data/')).filter((n) => !packsBefore.includes(n));
  const holdsTrees = (name: string) =>
    repository.index.chunksOf(idOf(name) as PackId).some((id) => repository.index.get(id)?.type === 'tree');
  return {
    snapshot,
    expected: await describeTree(source),
    indexFiles: (await names(repository.storage, 'index/')).filter((n) => !indexBefore.includes(n)),
    packs,
    dataPacks: packs.filter((name) => !holdsTrees(name)),
    treePacks: packs.filter(holdsTrees),
  };
}

before(async () => {
  const a = join(workDir.path, 'source-a');
  const b = join(workDir.path, 'source-b');
  await mkdir(join(a, 'sub'), { recursive: true });
  await mkdir(join(b, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(a, 'one.txt'), 'chain A\n'.repeat(500));
  await writeFile(join(a, 'sub', 'big.bin'), await pseudoRandomBuffer('a-big', 600 * 1024));
  await writeFile(join(b, 'b1.txt'), 'chain B\n'.repeat(500));
  await writeFile(join(b, 'sub', 'b2.bin'), await pseudoRandomBuffer('b2', 300 * 1024));
  await writeFile(join(b, 'sub', 'deeper', 'b3.txt'), 'deeper in B\n');

  const repository = await Repository.init(openStorage(`file://${pristine}`), passphrase, { scrypt });
  // A second passphrase wrapping the same master keys (a second key file).
  await repository.storage.put(
    blobNames.key('f'.repeat(64)),
    Buffer.from(JSON.stringify(await wrapMasterKeys(repository.keys, secondPassphrase, scrypt))),
  );
  keyNames = await names(repository.storage, prefixes.keys);
  fixtures.aFull = await backUp(repository, a);
  fixtures.b = await backUp(repository, b);
  await writeFile(join(a, 'two.txt'), 'added to A later\n');
  fixtures.aIncremental = await backUp(repository, a, fixtures.aFull.snapshot);
  for (const f of Object.values(fixtures)) assert.equal(f.indexFiles.length, 1, 'one index file per backup');
  assert.deepEqual((await check(repository, { readData: true })).errors, []);
});

after(() => workDir.remove());

/** A copy of the pristine repository to damage. */
async function copyOfPristine(): Promise<{ root: string; url: string; storage: Storage }> {
  const root = join(workDir.path, `case-${++cases}`);
  await cp(pristine, root, { recursive: true });
  return { root, url: `file://${root}`, storage: openStorage(`file://${root}`) };
}

async function flipByte(path: string, at?: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    const offset = at ?? Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = (byte[0] ?? 0) ^ 0x40;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

async function zeroRange(path: string, offset: number, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.write(Buffer.alloc(length), 0, length, offset);
  await handle.close();
}

/** Where chunk `id` of the pristine repository lives: its pack's path and the record's range. */
async function recordOf(root: string, chunk: string): Promise<{ path: string; offset: number; length: number }> {
  const at = (await Repository.open(openStorage(`file://${root}`), passphrase)).index.get(chunk as never);
  assert.ok(at, `chunk ${chunk} is indexed`);
  return { path: join(root, blobNames.pack(at.pack)), offset: at.offset, length: at.length };
}

/** The tree of B's `sub` directory, and the first data chunk of B's `sub/b2.bin`. */
async function chunksOfB(root: string): Promise<{ subTree: string; b2Data: string }> {
  const repository = await Repository.open(openStorage(`file://${root}`), passphrase);
  const store = repository.chunkStore();
  const { decodeTree } = await import('../../src/repository/tree.ts');
  const top = decodeTree(await store.get(fixtures.b.snapshot.root));
  const sub = top.entries.find((e) => e.name === 'sub')?.subtree as string;
  const b2 = decodeTree(await store.get(sub as never)).entries.find((e) => e.name === 'b2.bin');
  return { subTree: sub, b2Data: b2?.content?.[0] as string };
}

type Name = keyof typeof fixtures;

/**
 * The core claim: with `damaged` snapshots affected, every other snapshot lists and restores identical, and
 * `check --read-data` names `object` and each damaged snapshot. Returns the check report.
 */
async function assertIsolated(url: string, damaged: Name[], object: RegExp, forgotten: Name[] = []) {
  const repository = await Repository.open(openStorage(url), passphrase);
  const listing = await repository.snapshotListing();
  const listed = [...listing.snapshots.map((s) => s.id), ...listing.damaged.map((d) => idOf(d.name))];
  for (const [name, f] of Object.entries(fixtures))
    if (!forgotten.includes(name as Name)) assert.ok(listed.includes(f.snapshot.id), `${name} is listed`);
  for (const [name, f] of Object.entries(fixtures)) {
    if (damaged.includes(name as Name) || forgotten.includes(name as Name)) continue;
    const target = join(workDir.path, `restore-${++cases}`);
    await restoreTree(repository, await repository.findSnapshot(f.snapshot.id), target);
    assert.deepEqual(await describeTree(target), f.expected, `${name} restores identical`);
    await rm(target, { recursive: true, force: true });
  }
  const report = await check(repository, { readData: true });
  const text = report.errors.join('\n');
  assert.match(text, object, 'check names the damaged object');
  for (const name of damaged) assert.match(text, new RegExp(fixtures[name].snapshot.id), `check names ${name}`);
  for (const [name, f] of Object.entries(fixtures))
    if (!damaged.includes(name as Name))
      assert.ok(!report.affected.some((a) => a.snapshot === f.snapshot.id), `${name} is not reported as affected`);
  return { repository, report };
}

async function assertRestoreFails(url: string, name: Name): Promise<void> {
  const repository = await Repository.open(openStorage(url), passphrase);
  const target = join(workDir.path, `restore-${++cases}`);
  await assert.rejects(
    (async () => restoreTree(repository, await repository.findSnapshot(fixtures[name].snapshot.id), target))(),
    (error) => isCode(error, 'Corrupt') || isCode(error, 'NotFound'),
  );
}

async function assertPruneRefuses(url: string): Promise<void> {
  const storage = openStorage(url);
  const before = await names(storage, 'data/');
  await assert.rejects(prune(await Repository.open(storage, passphrase)), (error: Error) => {
    assert.ok(isCode(error, 'Corrupt'), error.message);
    assert.match(error.message, /prune refused/);
    return true;
  });
  assert.deepEqual(await names(storage, 'data/'), before, 'a refused prune deletes nothing');
}

async function assertRepairRestoresAll(url: string): Promise<void> {
  const report = await repairIndex(await Repository.open(openStorage(url), passphrase));
  assert.deepEqual(report.unreadablePacks, []);
  const { report: after } = await assertIsolated(url, [], /.*/);
  assert.deepEqual(after.errors, [], 'check is clean after repair');
  assert.equal(after.unreferencedPacks, 0);
}

describe('damage to config and keys', () => {
  for (const [how, damage] of [
    ['a flipped byte', (path: string) => flipByte(path)],
    ['zero length', (path: string) => truncate(path, 0)],
  ] as const) {
    test(`config with ${how}: opening fails naming config`, async () => {
      const { root, url } = await copyOfPristine();
      await damage(join(root, 'config'));
      await assert.rejects(Repository.open(openStorage(url), passphrase), (error: Error) => {
        assert.ok(isCode(error, 'Corrupt'), error.message);
        assert.match(error.message, /reading config from .*: config: /);
        return true;
      });
    });

    test(`a key file with ${how}: the error names it; the other key still opens and everything restores`, async () => {
      const { root, url } = await copyOfPristine();
      // The key of `passphrase` (the second key file, keys/fff…, sorts last).
      const ours = keyNames.find((n) => n !== blobNames.key('f'.repeat(64))) ?? '';
      await damage(join(root, ours));
      await assert.rejects(Repository.open(openStorage(url), passphrase), (error: Error) => {
        assert.match(error.message, new RegExp(ours), 'the error names the damaged key file');
        return true;
      });
      const repository = await Repository.open(openStorage(url), secondPassphrase);
      for (const f of Object.values(fixtures)) {
        const target = join(workDir.path, `restore-${++cases}`);
        await restoreTree(repository, await repository.findSnapshot(f.snapshot.id), target);
        assert.deepEqual(await describeTree(target), f.expected);
      }
    });
  }
});

describe('damage to a snapshot', () => {
  for (const [how, damage] of [
    ['a flipped byte', (path: string) => flipByte(path)],
    ['zero length', (path: string) => truncate(path, 0)],
  ] as const)
    test(`snapshot with ${how}: listed as damaged, the others restore, check names it, prune waits for a forget`, async () => {
      const { root, url } = await copyOfPristine();
      const name = blobNames.snapshot(fixtures.b.snapshot.id);
      await damage(join(root, name));
      const { repository, report } = await assertIsolated(url, ['b'], new RegExp(`${name}: `));
      const listing = await repository.snapshotListing();
      assert.deepEqual(
        listing.damaged.map((d) => d.name),
        [name],
      );
      assert.match(listing.damaged[0]?.reason ?? '', /authentication failed|shorter than an encrypted envelope/);
      assert.equal(report.snapshots, 2);
      await assert.rejects(repository.findSnapshot(fixtures.b.snapshot.id.slice(0, 10)), (error: Error) => {
        assert.ok(isCode(error, 'Corrupt'));
        assert.match(error.message, /cannot be read/);
        return true;
      });
      await assertPruneRefuses(url);
      await forget(repository, [fixtures.b.snapshot.id]);
      await prune(await Repository.open(openStorage(url), passphrase));
      const { report: after } = await assertIsolated(url, [], /.*/, ['b']);
      assert.deepEqual(after.errors, []);
      assert.equal(after.snapshots, 2);
    });
});

describe('damage to an index file', () => {
  for (const [how, damage] of [
    ['a flipped byte', (path: string) => flipByte(path)],
    ['zero length', (path: string) => truncate(path, 0)],
    ['deletion', (path: string) => rm(path)],
  ] as const)
    test(`index file with ${how}: only its snapshot is affected, its pack is not called removable, repair index brings it back`, async () => {
      const { root, url } = await copyOfPristine();
      const indexFile = fixtures.b.indexFiles[0] ?? '';
      await damage(join(root, indexFile));
      const object =
        how === 'deletion' ? /^index: chunks that snapshots reference are in no index/m : new RegExp(`${indexFile}: `);
      const { report } = await assertIsolated(url, ['b'], object);
      const packsOfB = fixtures.b.packs.map(idOf);
      assert.deepEqual(report.packsToReindex, packsOfB.sort(), 'the packs holding the only copy are to be re-indexed');
      assert.equal(report.unreferencedPacks, 0, 'no pack is called safe to delete');
      assert.deepEqual(report.affected.find((a) => a.snapshot === fixtures.b.snapshot.id)?.lost, []);
      assert.match(report.errors.join('\n'), /repo repair index/);
      await assertRestoreFails(url, 'b');
      await assertPruneRefuses(url);
      await assertRepairRestoresAll(url);
    });
});

describe('damage to trees and data packs', () => {
  test('a tree record with a flipped byte: the directory is lost for its snapshot only, named with its path', async () => {
    const { root, url } = await copyOfPristine();
    const record = await recordOf(root, (await chunksOfB(root)).subTree);
    await flipByte(record.path, record.offset + Math.floor(record.length / 2));
    const { report } = await assertIsolated(url, ['b'], new RegExp(`${idOf(record.path)}: .*authentication failed`));
    assert.deepEqual(report.affected.find((a) => a.snapshot === fixtures.b.snapshot.id)?.lost, ['/sub/']);
    // Found without --read-data too: reading the trees is part of the structural check.
    const structural = await check(await Repository.open(openStorage(url), passphrase));
    assert.match(structural.errors.join('\n'), new RegExp(fixtures.b.snapshot.id));
    await assertRestoreFails(url, 'b');
  });

  test('a tree record zeroed: the same, as a damaged chunk', async () => {
    const { root, url } = await copyOfPristine();
    const record = await recordOf(root, (await chunksOfB(root)).subTree);
    await zeroRange(record.path, record.offset, record.length);
    const { report } = await assertIsolated(url, ['b'], new RegExp(idOf(record.path)));
    assert.deepEqual(report.affected.find((a) => a.snapshot === fixtures.b.snapshot.id)?.lost, ['/sub/']);
  });

  test('a data record with a flipped byte: check --read-data names the pack, the snapshot and the file', async () => {
    const { root, url } = await copyOfPristine();
    const record = await recordOf(root, (await chunksOfB(root)).b2Data);
    await flipByte(record.path, record.offset + 100);
    const { report } = await assertIsolated(url, ['b'], new RegExp(`${idOf(record.path)}: 1 damaged chunk`));
    assert.deepEqual(report.affected.find((a) => a.snapshot === fixtures.b.snapshot.id)?.lost, ['/sub/b2.bin']);
    await assertRestoreFails(url, 'b');
  });

  test('a data pack of chain A with zero length: both snapshots of the chain are affected, chain B is not', async () => {
    const { root, url } = await copyOfPristine();
    assert.equal(fixtures.aFull.dataPacks.length, 1);
    const pack = fixtures.aFull.dataPacks[0] ?? '';
    await truncate(join(root, pack), 0);
    const { report } = await assertIsolated(url, ['aFull', 'aIncremental'], new RegExp(`${pack}: has 0 bytes`));
    const affected = (name: 'aFull' | 'aIncremental') =>
      report.affected.find((a) => a.snapshot === fixtures[name].snapshot.id);
    // The trees are in a pack of their own: what is lost is the files whose data was in it, named; the file the
    // incremental added (its data in the incremental's pack) is not.
    for (const name of ['aFull', 'aIncremental'] as const) {
      assert.deepEqual(affected(name)?.lost.sort(), ['/one.txt', '/sub/big.bin'], name);
      assert.deepEqual(affected(name)?.recoverable, [], name);
    }
    await assertRestoreFails(url, 'aFull');
    await assertPruneRefuses(url);
  });

  test('a deleted tree pack: check names it missing and the snapshot lost; repair index does not hide the loss', async () => {
    const { root, url } = await copyOfPristine();
    assert.equal(fixtures.b.treePacks.length, 1);
    const pack = fixtures.b.treePacks[0] ?? '';
    await rm(join(root, pack));
    const { report } = await assertIsolated(url, ['b'], new RegExp(`${pack}: missing from`));
    assert.ok(report.affected[0]?.lost.includes('/'), 'the whole snapshot is lost (its root tree was in that pack)');
    await assertPruneRefuses(url);
    await repairIndex(await Repository.open(openStorage(url), passphrase));
    const { report: after } = await assertIsolated(
      url,
      ['b'],
      /^index: chunks that snapshots reference are in no index/m,
    );
    assert.equal(after.affected.length, 1);
  });
});

describe('crash leftovers', () => {
  test('an old temporary blob and a stale lock are reported by check, listed by repo unlock and removed by prune', async () => {
    const { root, url, storage } = await copyOfPristine();
    const [folder = ''] = await readdir(join(root, 'data'));
    const oldTemp = join(root, 'data', folder, '.0123456789abcdef~');
    const youngTemp = join(root, 'index', '.fedcba9876543210~');
    await writeFile(oldTemp, 'half a pack');
    await writeFile(youngTemp, 'a put in progress');
    const hourAgo = new Date(Date.now() - 60 * 60 * 1000);
    await utimes(oldTemp, hourAgo, hourAgo);
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    const staleLock = blobNames.lock('a'.repeat(64));
    const liveLock = blobNames.lock('b'.repeat(64));
    const lockBody = (pid: number) =>
      Buffer.from(
        JSON.stringify({
          exclusive: false,
          hostname: hostname(),
          pid,
          time: hourAgo.toISOString(),
          refreshed: new Date().toISOString(),
        }),
      );
    await storage.put(staleLock, lockBody(deadPid));
    await storage.put(blobNames.lock('c'.repeat(64)), Buffer.from('not json'));

    const report = await check(await Repository.open(storage, passphrase));
    assert.deepEqual(report.errors, [], 'leftovers are not damage');
    assert.equal(report.leftovers.tempBlobs.length, 1);
    assert.match(report.leftovers.tempBlobs[0] ?? '', /^data\/.*\.0123456789abcdef~ \(11 bytes/);
    assert.deepEqual(
      report.leftovers.staleLocks.map((l) => l.split(':')[0]),
      [staleLock, blobNames.lock('c'.repeat(64))],
    );

    const listed = await cli(['repo', 'unlock', '--repo', url]);
    assert.match(listed, /found 2 stale locks, 1 temporary blobs \(--remove-stale removes them\)/);
    await prune(await Repository.open(storage, passphrase));
    const after = await check(await Repository.open(storage, passphrase));
    assert.deepEqual(after.leftovers, { tempBlobs: [], staleLocks: [] });
    await assert.rejects(readdir(oldTemp));
    assert.ok((await readdir(join(root, 'index'))).includes('.fedcba9876543210~'), 'a young temporary blob stays');

    // `repo unlock --remove-stale` does the same without a prune; a live holder's lock stays.
    await storage.put(staleLock, lockBody(deadPid));
    await storage.put(liveLock, lockBody(process.pid));
    assert.match(await cli(['repo', 'unlock', '--repo', url, '--remove-stale']), /removed 1 stale locks, 0 temporary/);
    assert.deepEqual(await names(storage, prefixes.locks), [liveLock]);
  });
});

describe('the CLI', () => {
  test('repo snapshots lists a damaged snapshot as damaged; repo check names the damage; repo repair index mends a deleted index', async () => {
    const { root, url } = await copyOfPristine();
    await flipByte(join(root, blobNames.snapshot(fixtures.aFull.snapshot.id)));
    await rm(join(root, fixtures.b.indexFiles[0] ?? ''));
    await truncate(join(root, fixtures.aIncremental.indexFiles[0] ?? ''), 0);
    const listing = await cli(['repo', 'snapshots', '--repo', url]);
    assert.match(
      listing,
      new RegExp(`cannot be read: snapshots/${fixtures.aFull.snapshot.id}, ${fixtures.aIncremental.indexFiles[0]};`),
    );
    assert.match(listing, new RegExp(`${fixtures.aFull.snapshot.id.slice(0, 12)}  DAMAGED: .*authentication failed`));
    assert.match(listing, new RegExp(`${fixtures.b.snapshot.id.slice(0, 12)}  .*full`));
    assert.match(listing, new RegExp(`${fixtures.aIncremental.snapshot.id.slice(0, 12)}  .*incremental`));

    const checked = await cli(['repo', 'check', '--repo', url]);
    // Each backup's data pack and tree pack.
    assert.match(checked, /check FAILED: 2 snapshots, .*0 unreferenced packs safe to delete.*4 packs to re-index/);
    assert.equal(process.exitCode, 1);
    process.exitCode = 0;

    assert.match(await cli(['repo', 'repair', 'index', '--repo', url]), /rebuilt the index: \d+ packs/);

    // Copy takes what reads and says what it could not.
    const replica = `file://${workDir.path}/replica-${++cases}`;
    await Repository.init(openStorage(replica), passphrase, { scrypt });
    const keyFile = join(workDir.path, 'replica.key');
    await writeFile(keyFile, passphrase);
    const copied = await cli(['repo', 'copy', '--repo', url, '--to', replica, '--to-key-file', keyFile]);
    assert.match(
      copied,
      new RegExp(`copied 2, .*not copied, unreadable in the source .*${fixtures.aFull.snapshot.id}`),
    );
    assert.equal(process.exitCode, 1);
    process.exitCode = 0;

    await cli(['repo', 'forget', '--repo', url, fixtures.aFull.snapshot.id.slice(0, 10)]);
    assert.match(await cli(['repo', 'check', '--repo', url, '--read-data']), /^no errors: 2 snapshots/m);
    assert.equal(process.exitCode, 0);
  });
});

describe('on S3', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await startS3(workDir.path);
    await s3.createBucket('damage');
  });
  after(() => s3?.stop());

  test('a deleted index file: the other snapshots restore, check names the packs to re-index, repair brings it back', async () => {
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const url = `s3://damage/repo?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&pathStyle=true`;
    const source = openStorage(`file://${pristine}`);
    const target = openStorage(url, env);
    for await (const blob of source.list('')) await target.put(blob.name, await source.get(blob.name));
    await target.delete(fixtures.b.indexFiles[0] ?? '');
    const repository = await Repository.open(target, passphrase);
    for (const f of [fixtures.aFull, fixtures.aIncremental]) {
      const dir = join(workDir.path, `restore-${++cases}`);
      await restoreTree(repository, f.snapshot, dir);
      assert.deepEqual(await describeTree(dir), f.expected);
    }
    const report = await check(repository);
    assert.deepEqual(report.packsToReindex, fixtures.b.packs.map(idOf).sort());
    await repairIndex(repository);
    const repaired = await Repository.open(target, passphrase);
    assert.deepEqual((await check(repaired, { readData: true })).errors, []);
    const dir = join(workDir.path, `restore-${++cases}`);
    await restoreTree(repaired, fixtures.b.snapshot, dir);
    assert.deepEqual(await describeTree(dir), fixtures.b.expected);
  });

  test('an abandoned multipart upload is reported once old and then removed, other uploads left alone', async () => {
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const url = `s3://damage/leftovers?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&pathStyle=true`;
    const storage = openStorage(url, env);
    await Repository.init(storage, passphrase, { scrypt });
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const key = `leftovers/data/ab/ab${'0'.repeat(62)}`;
    const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: 'damage', Key: key }));
    await client.send(
      new sdk.UploadPartCommand({ Bucket: 'damage', Key: key, UploadId, PartNumber: 1, Body: Buffer.from('part') }),
    );

    const foreign = await client.send(
      new sdk.CreateMultipartUploadCommand({ Bucket: 'damage', Key: 'elsewhere/data/x' }),
    );

    assert.deepEqual((await findCrashLeftovers(storage)).tempBlobs, [], 'a young upload may still be running');
    const later = new Date(Date.now() + 60 * 60 * 1000);
    const found = await findCrashLeftovers(storage, later);
    assert.deepEqual(
      found.tempBlobs.map((t) => [t.name, t.size]),
      [[key.slice('leftovers/'.length), 4]],
    );
    await removeCrashLeftovers(storage, later);
    const uploads = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: 'damage' }));
    assert.deepEqual(
      (uploads.Uploads ?? []).map((u) => u.UploadId),
      [foreign.UploadId],
    );
    client.destroy();
  });
});

/** Runs the CLI in-process with the repository passphrase in the environment; returns what it printed. */
async function cli(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.env.TIDEMARK_REPO_KEY = passphrase.toString();
  process.stdout.write = ((chunk: string) => chunks.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => chunks.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'tidemark', ...args]);
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    delete process.env.TIDEMARK_REPO_KEY;
  }
  return chunks.join('');
}
