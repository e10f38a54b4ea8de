// Issue 10 finding 7: a backup rides out an object-store outage within its retry budget, and when the budget
// runs out the error that ends it is the failed upload, not the lock release that follows. Real versitygw,
// stopped mid-backup.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { check } from '../../src/repository/check.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { pseudoRandom, pseudoRandomBuffer } from '../harness/fixtures.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('storage-outage');
const passphrase = Buffer.from('correct horse battery staple');
let s3: S3Server;
let env: NodeJS.ProcessEnv;
let counter = 0;

before(async () => {
  s3 = await startS3(workDir.path);
  await s3.createBucket('backups');
  env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
});

after(async () => {
  await s3?.stop();
  workDir.remove();
});

const MiB = 1024 * 1024;

async function newRepository(retryBudget: string): Promise<Repository> {
  const url = `s3://backups/repo-${++counter}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&pathStyle=true`;
  const storage = openStorage(url, { ...env, TIDEMARK_RETRY_BUDGET: retryBudget });
  return Repository.init(storage, passphrase, { scrypt: { N: 1024, r: 8, p: 1 } });
}

/** 40 MiB of data; after the first 20 MiB (one pack on its way) the server is stopped, and `outage` runs. */
async function* dataWithOutage(seed: string, outage: () => Promise<void>): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const block of pseudoRandom(seed, 40 * MiB)) {
    yield block;
    sent += block.length;
    if (sent === 20 * MiB) await outage();
  }
}

describe('an object-store outage during a backup', () => {
  test('a 20 s outage mid-backup does not fail it; the snapshot restores identical', async () => {
    const repository = await newRepository('2m');
    let restarted: Promise<void> | undefined;
    const backup = backupStreams(
      repository,
      [
        {
          name: 'dump.sql',
          data: dataWithOutage('outage', async () => {
            await s3.stop();
            restarted = sleep(20_000).then(() => s3.restart());
          }),
        },
      ],
      { type: 'full', source: 'test' },
    );
    const snapshot = await backup.finally(() => restarted);
    assert.equal(snapshot.summary.logicalBytes, 40 * MiB);
    const restored: Buffer[] = [];
    const out = new PassThrough();
    out.on('data', (data: Buffer) => restored.push(data));
    await restoreStream(repository, snapshot, out);
    assert.ok(Buffer.concat(restored).equals(await pseudoRandomBuffer('outage', 40 * MiB)));
    assert.deepEqual((await check(repository)).errors, []);
  });

  test('an outage longer than the budget fails with the upload error, not the lock release', async () => {
    const repository = await newRepository('3s');
    let restarted: Promise<void> | undefined;
    const backup = backupStreams(
      repository,
      [
        {
          name: 'dump.sql',
          data: dataWithOutage('too-long', async () => {
            await s3.stop();
            restarted = sleep(15_000).then(() => s3.restart());
          }),
        },
      ],
      { type: 'full', source: 'test' },
    );
    await assert.rejects(
      backup.finally(() => restarted),
      (error: TidemarkError) => {
        assert.equal(error.code, 'Transient');
        assert.match(error.message, /^uploading pack [0-9a-f]{12} to s3:\/\/backups\//);
        assert.doesNotMatch(error.message.split(';')[0] as string, /locks\//);
        return true;
      },
    );
  });
});
