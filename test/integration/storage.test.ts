import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AzureBlobStorage, type AzureBlobStorageOptions } from '../../src/repository/storage/azblob.ts';
import { type RetryEvent, retrying } from '../../src/repository/storage/retrying.ts';
import { S3Storage, type S3StorageOptions } from '../../src/repository/storage/s3.ts';
import { runStorageConformance } from '../../src/repository/storage/storage.conformance.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type AzuriteServer, startAzurite } from '../harness/azurite.ts';
import { freePort } from '../harness/ports.ts';
import { waitUntil } from '../harness/process.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('storage');
let s3: S3Server;
let azurite: AzuriteServer;
const bucket = 'tidemark-conformance';
const container = 'tidemark-conformance';
let opened = 0;
const unique = (what: string) => `${what}-${++opened}-${randomBytes(3).toString('hex')}`;

before(async () => {
  [s3, azurite] = await Promise.all([startS3(workDir.path), startAzurite(workDir.path)]);
  await s3.createBucket(bucket);
  await new AzureBlobStorage({ connectionString: azurite.connectionString, container, prefix: '' }).ensureContainer();
});

after(async () => {
  await Promise.allSettled([s3?.stop(), azurite?.stop()]);
  workDir.remove();
});

const s3Options = (options: Partial<S3StorageOptions> = {}): S3StorageOptions => ({
  bucket,
  prefix: unique('run'),
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  ...options,
});

const azureOptions = (options: Partial<{ container: string; endpoint: string; accountKey: string }> = {}) =>
  ({
    container,
    prefix: unique('run'),
    endpoint: azurite.blobEndpoint,
    accountName: azurite.accountName,
    accountKey: azurite.accountKey,
    ...options,
  }) satisfies AzureBlobStorageOptions;

const deadEndpoint = async (path = '') => `http://127.0.0.1:${await freePort()}${path}`;

runStorageConformance('s3 (versitygw)', async () => new S3Storage(s3Options()), {
  missingContainer: async () => new S3Storage(s3Options({ bucket: unique('missing') })),
  wrongCredentials: async () =>
    new S3Storage(s3Options({ credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'wrong-secret' } })),
  unreachable: async () => new S3Storage(s3Options({ endpoint: await deadEndpoint() })),
});

runStorageConformance('azblob (Azurite)', async () => new AzureBlobStorage(azureOptions()), {
  missingContainer: async () => new AzureBlobStorage(azureOptions({ container: unique('missing') })),
  wrongCredentials: async () => new AzureBlobStorage(azureOptions({ accountKey: randomBytes(64).toString('base64') })),
  unreachable: async () =>
    new AzureBlobStorage(azureOptions({ endpoint: await deadEndpoint(`/${azurite.accountName}`) })),
});

runStorageConformance(
  'azblob (Azurite, connection string)',
  async () => new AzureBlobStorage({ connectionString: azurite.connectionString, container, prefix: unique('run') }),
  {
    missingContainer: async () =>
      new AzureBlobStorage({ connectionString: azurite.connectionString, container: unique('missing'), prefix: '' }),
  },
);

describe('storage on real servers', () => {
  test('openStorage opens s3:// and azblob:// URLs with credentials from the environment', async () => {
    const storages = [
      openStorage(`s3://${bucket}/${unique('url')}?endpoint=${s3.endpoint}&region=${s3.region}&pathStyle=true`, {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      }),
      openStorage(`azblob://${container}/${unique('url')}?endpoint=${azurite.blobEndpoint}`, {
        AZURE_STORAGE_ACCOUNT: azurite.accountName,
        AZURE_STORAGE_KEY: azurite.accountKey,
      }),
      openStorage(`azblob://${container}/${unique('url')}`, {
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
      }),
    ];
    for (const storage of storages) {
      await storage.put('packs/p', Buffer.from('via url'));
      assert.equal((await storage.get('packs/p')).toString(), 'via url', storage.description);
      const listed = [];
      for await (const blob of storage.list('')) listed.push(blob);
      assert.deepEqual(listed, [{ name: 'packs/p', size: 7 }], storage.description);
      assert.ok(!storage.description.includes(s3.secretAccessKey) && !storage.description.includes(azurite.accountKey));
    }
  });

  test('s3: an operation during a server outage is retried until the server is back', async () => {
    const retries: RetryEvent[] = [];
    const storage = retrying(new S3Storage(s3Options()), {
      budgetMs: 30_000,
      baseDelayMs: 50,
      maxDelayMs: 500,
      onRetry: (event) => retries.push(event),
    });
    await storage.put('packs/p', Buffer.from('before the outage'));
    await s3.stop();
    const reading = storage.get('packs/p');
    reading.catch(() => {}); // awaited below, after the restart
    // The server comes back only once the read has failed at least once (on a busy machine the first
    // attempt could otherwise start after the restart and prove nothing).
    await waitUntil('a retry during the outage', async () => retries.length > 0, { timeoutMs: 10_000, intervalMs: 20 });
    await s3.restart();
    assert.equal((await reading).toString(), 'before the outage');
    assert.ok(retries.length > 0, 'no retry happened');
    assert.ok(retries.every((retry) => retry.error.code === 'Transient'));
  });
});
