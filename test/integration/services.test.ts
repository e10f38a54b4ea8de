import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../harness/azurite.ts';
import { startMariaDB } from '../harness/mariadb.ts';
import { startPostgres } from '../harness/postgres.ts';
import { runCommand } from '../harness/process.ts';
import { startS3 } from '../harness/s3.ts';
import { systemTool } from '../harness/tools.ts';

describe('SPEC §4: tests run against real services started by the harness', () => {
  let workDir: string;
  const stops: Array<() => Promise<void>> = [];
  let passed = 0;
  const tests = 4;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'tidemark-services-'));
  });

  after(async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    if (passed === tests) await rm(workDir, { recursive: true, force: true });
    else console.error(`services test: logs kept in ${workDir}`);
  });

  test('§4 PostgreSQL: password login over TCP, create table, insert, count', async () => {
    const pg = await startPostgres(workDir);
    stops.push(pg.stop);
    await pg.psql('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    await pg.psql("INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')");
    assert.equal((await pg.psql('SELECT count(*) FROM notes')).trim(), '3');
    assert.match(pg.url, /^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    const wrongPassword = runCommand(systemTool('psql', 'postgresql-client'), ['-X', '-c', 'SELECT 1'], {
      env: { ...process.env, ...pg.env, PGPASSWORD: 'wrong' },
      logFile: join(workDir, 'wrong-password.log'),
    });
    await assert.rejects(wrongPassword, /password authentication failed/);
    passed++;
  });

  test('§4 MariaDB: root with password over TCP, create table, insert, count', async () => {
    const db = await startMariaDB(workDir);
    stops.push(db.stop);
    await db.sql('CREATE DATABASE shop');
    await db.sql(
      'CREATE TABLE items (id INT PRIMARY KEY, name TEXT); INSERT INTO items VALUES (1, "x"), (2, "y")',
      'shop',
    );
    assert.equal((await db.sql('SELECT count(*) FROM shop.items')).trim(), '2');
    assert.equal((await db.sql('SELECT current_user()')).trim(), 'root@127.0.0.1');
    passed++;
  });

  test('§4 S3 (versitygw): create bucket, put and get an object, survive a restart', async () => {
    const s3 = await startS3(workDir);
    stops.push(s3.stop);
    await s3.createBucket('tidemark-test');
    const client = s3.client();
    try {
      await client.send(new PutObjectCommand({ Bucket: 'tidemark-test', Key: 'dir/hello.txt', Body: 'hello s3' }));
      await s3.restart();
      const got = await client.send(new GetObjectCommand({ Bucket: 'tidemark-test', Key: 'dir/hello.txt' }));
      assert.equal(await got.Body?.transformToString(), 'hello s3');
    } finally {
      client.destroy();
    }
    passed++;
  });

  test('§4 Azure Blob (Azurite): create a container, upload and download a blob', async () => {
    const azurite = await startAzurite(workDir);
    stops.push(azurite.stop);
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('tidemark');
    await container.create();
    const blob = container.getBlockBlobClient('dir/hello.txt');
    await blob.upload('hello blob', 'hello blob'.length);
    assert.equal((await blob.downloadToBuffer()).toString(), 'hello blob');
    passed++;
  });
});
