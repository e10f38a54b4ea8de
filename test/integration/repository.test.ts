// The repository engine end to end on the real backends: a filesystem, the S3 server (versitygw) and
// Azure Blob (Azurite). SPEC "Repository format", R-REPL (copy).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isCode } from '../../src/errors.ts';
import { backupStreams, backupTree } from '../../src/repository/backup.ts';
import { check } from '../../src/repository/check.ts';
import { copySnapshots } from '../../src/repository/copy.ts';
import { prefixes } from '../../src/repository/format.ts';
import { prune } from '../../src/repository/prune.ts';
import { openReplica } from '../../src/repository/replica.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream, restoreTree } from '../../src/repository/restore.ts';
import { counting } from '../../src/repository/storage/counting.ts';
import type { Storage } from '../../src/repository/storage/storage.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type AzuriteServer, startAzurite } from '../harness/azurite.ts';
import { describeTree, makeTrickyTree, pseudoRandom, pseudoRandomBuffer } from '../harness/fixtures.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('repository');
const passphrase = Buffer.from('correct horse battery staple');
let s3: S3Server;
let azurite: AzuriteServer;
const env: NodeJS.ProcessEnv = {};
const tricky = join(workDir.path, 'tricky');
let counter = 0;

before(async () => {
  [s3, azurite] = await Promise.all([startS3(workDir.path), startAzurite(workDir.path)]);
  await s3.createBucket('backups');
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
  });
  await makeTrickyTree(tricky);
});

after(async () => {
  await Promise.all([s3?.stop(), azurite?.stop()]);
  workDir.remove();
});

const backends: Record<string, () => string> = {
  filesystem: () => `file://${workDir.path}/repos/fs-${++counter}`,
  s3: () =>
    `s3://backups/repo-${++counter}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&pathStyle=true`,
  azureBlob: () => `azblob://backups/repo-${++counter}`,
};

const storageAt = (url: string) => openStorage(url, env);
const initAt = (url: string) => Repository.init(storageAt(url), passphrase, { scrypt: { N: 1024, r: 8, p: 1 } });

async function storedBytes(storage: Storage): Promise<number> {
  let total = 0;
  for await (const blob of storage.list('')) total += blob.size;
  return total;
}

async function sha256OfStream(data: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of data) hash.update(chunk);
  return hash.digest('hex');
}

for (const [backend, url] of Object.entries(backends)) {
  describe(`round trip on ${backend}`, () => {
    test('a tree with empty and large files, symlinks, hard links, permissions, mtimes and non-UTF-8 names restores identical', async () => {
      const repository = await initAt(url());
      const snapshot = await backupTree(repository, tricky, { type: 'full', source: 'tricky' });
      const target = join(workDir.path, `restored-${backend}`);
      const reopened = await Repository.open(repository.storage, passphrase);
      await restoreTree(reopened, await reopened.findSnapshot(snapshot.id), target);
      assert.deepEqual(await describeTree(target), await describeTree(tricky));
    });

    test('a 1 GiB stream restores with the same SHA-256', async () => {
      const repository = await initAt(url());
      const size = 1024 * 1024 * 1024;
      const expected = await sha256OfStream(pseudoRandom(`stream-${backend}`, size));
      const snapshot = await backupStreams(
        repository,
        [{ name: 'dump.sql', data: pseudoRandom(`stream-${backend}`, size) }],
        {
          type: 'full',
          source: 'stdin',
        },
      );
      assert.equal(snapshot.summary.logicalBytes, size);
      const out = new PassThrough();
      const [digest] = await Promise.all([sha256OfStream(out), restoreStream(repository, snapshot, out)]);
      assert.equal(digest, expected);
    });
  });
}

describe('deduplication', () => {
  const GiB = 1024 * 1024 * 1024;
  const tree = join(workDir.path, 'dedup');

  before(async () => {
    for (let i = 0; i < 64; i++) {
      const handle = await open(join(await ensureDir(tree), `file-${i}.bin`), 'w');
      for await (const part of pseudoRandom(`dedup-${i}`, GiB / 64)) await handle.write(part);
      await handle.close();
    }
  });

  test('an unchanged 1 GiB tree uploads < 1 MiB the second time; 1% changed uploads < 3%', async () => {
    const repository = await initAt(backends.s3?.() ?? '');
    const first = await backupTree(repository, tree, { type: 'full', source: 'dedup' });
    const afterFirst = await storedBytes(repository.storage);
    assert.ok(afterFirst > GiB * 0.99, 'random data is stored whole the first time');

    const second = await backupTree(repository, tree, { type: 'incremental', source: 'dedup', parent: first });
    const afterSecond = await storedBytes(repository.storage);
    assert.ok(afterSecond - afterFirst < 1024 * 1024, `unchanged: ${afterSecond - afterFirst} bytes added`);

    // Change 1% of the bytes: three regions of 3.4 MiB in three files.
    for (const i of [3, 20, 41]) {
      const handle = await open(join(tree, `file-${i}.bin`), 'r+');
      await handle.write(Buffer.alloc(3.4 * 1024 * 1024, i), 0, undefined, 5 * 1024 * 1024);
      await handle.close();
    }
    const third = await backupTree(repository, tree, { type: 'incremental', source: 'dedup', parent: second });
    const added = (await storedBytes(repository.storage)) - afterSecond;
    assert.ok(added < 0.03 * GiB, `1% changed: ${added} bytes added (${((added / GiB) * 100).toFixed(2)}%)`);
    assert.equal(third.chainId, first.chainId, 'incrementals continue the chain');

    const full = await backupTree(repository, tree, { type: 'full', source: 'dedup', parent: third });
    assert.notEqual(full.chainId, first.chainId, 'a full backup starts a new chain');
    assert.ok((await storedBytes(repository.storage)) - afterSecond > GiB * 0.99, 'and shares no chunk with it');
  });
});

async function ensureDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}

describe('crash safety', () => {
  test('kill -9 mid-upload leaves no snapshot; check passes; the next backup succeeds; prune removes the orphans', async () => {
    const url = backends.s3?.() ?? '';
    const repository = await initAt(url);
    const source = join(workDir.path, 'crash');
    const handle = await open(join(await ensureDir(source), 'big.bin'), 'w');
    for await (const part of pseudoRandom('crash', 400 * 1024 * 1024)) await handle.write(part);
    await handle.close();

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'repo', 'backup', '--source', source],
      {
        env: { ...process.env, ...env, TIDEMARK_REPO: url, TIDEMARK_REPO_KEY: passphrase.toString() },
        stdio: 'ignore',
      },
    );
    let exitCode: number | null | undefined;
    const exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        exitCode = code;
        resolve(code);
      }),
    );
    let packs = 0;
    while (packs === 0) {
      assert.equal(exitCode, undefined, 'the backup exited before it uploaded a pack');
      for await (const _ of repository.storage.list(prefixes.data)) packs++;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await exited;

    const afterCrash = await Repository.open(repository.storage, passphrase);
    assert.deepEqual(await afterCrash.snapshots(), [], 'no visible snapshot');
    const report = await check(afterCrash, { readData: true });
    assert.deepEqual(report.errors, []);
    assert.ok(report.unreferencedPacks > 0, 'the interrupted upload left packs no index lists');

    const snapshot = await backupTree(afterCrash, source, { type: 'full', source: 'crash' });
    const pruned = await prune(await Repository.open(repository.storage, passphrase));
    assert.ok(pruned.deletedPacks >= report.unreferencedPacks, 'prune removed the orphans');
    const final = await Repository.open(repository.storage, passphrase);
    const finalReport = await check(final, { readData: true });
    assert.deepEqual(finalReport.errors, []);
    assert.equal(finalReport.unreferencedPacks, 0);
    assert.deepEqual(
      (await final.snapshots()).map((s) => s.id),
      [snapshot.id],
    );
  });
});

describe('corruption and wrong keys', () => {
  test('one flipped byte in one pack fails check --read-data naming pack and snapshot, and fails restore loudly', async () => {
    const root = join(workDir.path, 'repos', 'corrupt');
    const repository = await initAt(`file://${root}`);
    const snapshot = await backupTree(repository, tricky, { type: 'full', source: 'tricky' });
    assert.deepEqual((await check(repository, { readData: true })).errors, []);

    const [folder = ''] = await readdir(join(root, 'data'));
    const [pack = ''] = await readdir(join(root, 'data', folder));
    const handle = await open(join(root, 'data', folder, pack), 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 1000);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    await handle.write(byte, 0, 1, 1000);
    await handle.close();

    const damaged = await Repository.open(repository.storage, passphrase);
    const report = await check(damaged, { readData: true });
    assert.equal(report.damaged.length, 1, report.errors.join('\n'));
    assert.match(report.errors[0] ?? '', new RegExp(`${pack}: .*needed by snapshot\\(s\\) ${snapshot.id}`));
    assert.deepEqual(
      report.affected.map((a) => a.snapshot),
      [snapshot.id],
    );

    const target = join(workDir.path, 'restored-corrupt');
    await assert.rejects(restoreTree(damaged, snapshot, target), (error) => isCode(error, 'Corrupt'));
  });

  test('a wrong passphrase fails with a clear message', async () => {
    const url = backends.filesystem?.() ?? '';
    await initAt(url);
    await assert.rejects(Repository.open(storageAt(url), Buffer.from('wrong')), (error: Error) => {
      assert.ok(isCode(error, 'WrongKey'));
      assert.match(error.message, /wrong repository key/);
      return true;
    });
  });
});

describe('copy to a replica (R-REPL)', () => {
  test('S3 primary to Azurite replica: the replica alone restores identical; a second copy uploads nothing', async () => {
    const primary = await initAt(backends.s3?.() ?? '');
    const replicaUrl = backends.azureBlob?.() ?? '';
    const replica = await initAt(replicaUrl);
    const first = await backupTree(primary, tricky, { type: 'full', source: 'tricky' });
    await writeFile(join(tricky, 'added-later.txt'), 'new file');
    const second = await backupTree(primary, tricky, { type: 'incremental', source: 'tricky', parent: first });
    const expected = await describeTree(tricky);
    await rm(join(tricky, 'added-later.txt'));

    const report = await copySnapshots(primary, replica, await primary.snapshots());
    assert.deepEqual(report.copied.sort(), [first.id, second.id].sort());

    const alone = await Repository.open(storageAt(replicaUrl), passphrase);
    assert.deepEqual((await check(alone, { readData: true })).errors, []);
    const target = join(workDir.path, 'restored-from-replica');
    await restoreTree(alone, await alone.findSnapshot(second.id), target);
    assert.deepEqual(await describeTree(target), expected);

    const before = await storedBytes(alone.storage);
    const again = await copySnapshots(
      primary,
      await Repository.open(storageAt(replicaUrl), passphrase),
      await primary.snapshots(),
    );
    assert.deepEqual(again.copied, []);
    assert.equal(again.uploadedBytes, 0);
    assert.equal(await storedBytes(alone.storage), before);
  });

  test('S3 primary to a probed Azurite replica: it takes the primary’s chunk identity, and a small change reads little from S3', async () => {
    const primaryStorage = counting(storageAt(backends.s3?.() ?? ''));
    const primary = await Repository.init(primaryStorage, passphrase, { scrypt: { N: 1024, r: 8, p: 1 } });
    const replicaUrl = backends.azureBlob?.() ?? '';
    const probed = await initAt(replicaUrl); // as the BackupRepository probe leaves it: empty, its own keys
    const source = join(workDir.path, 'replicated');
    await mkdir(source, { recursive: true });
    for (let i = 0; i < 4; i++) await writeFile(join(source, `f${i}.bin`), await pseudoRandomBuffer(`f${i}`, 8 << 20));
    const first = await backupTree(primary, source, { type: 'full', source: 'replicated' });
    const file = await open(join(source, 'f2.bin'), 'r+');
    await file.write(await pseudoRandomBuffer('change', 64 << 10), 0, 64 << 10, 3 << 20);
    await file.close();
    const second = await backupTree(primary, source, { type: 'incremental', source: 'replicated', parent: first });

    const replica = await openReplica(primary, storageAt(replicaUrl), passphrase);
    assert.ok(replica.sharesChunkIdentityWith(primary));
    assert.ok(replica.keys.encryption.equals(probed.keys.encryption), 'the replica keeps its own encryption key');
    assert.equal((await copySnapshots(primary, replica, [first])).identity, 'shared');
    primaryStorage.reset();
    const report = await copySnapshots(primary, await openReplica(primary, storageAt(replicaUrl), passphrase), [
      second,
    ]);
    assert.equal(report.identity, 'shared');
    const read = primaryStorage.bytesRead(prefixes.data);
    assert.ok(
      read > 0 && read < second.summary.logicalBytes / 4,
      `${read} bytes of packs read from S3 for a 64 KiB change`,
    );

    const alone = await Repository.open(storageAt(replicaUrl), passphrase);
    assert.deepEqual((await check(alone, { readData: true })).errors, []);
    const target = join(workDir.path, 'restored-replicated');
    await restoreTree(alone, await alone.findSnapshot(second.id), target);
    assert.deepEqual(await describeTree(target), await describeTree(source));
  });
});
