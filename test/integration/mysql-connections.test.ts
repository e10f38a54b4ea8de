// MariaDB connections as operators configure them: TLS with a client certificate and no password, and a
// dump that meets a metadata lock held by another session (the analogue of issue 9, finding 10:
// mariadb-dump waits lock_wait_timeout, a day by default). Real MariaDB from Debian.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBackup } from '../../src/agent/run-backup.ts';
import { runRestore } from '../../src/agent/run-restore.ts';
import { isCode } from '../../src/errors.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { waitUntil } from '../harness/process.ts';
import { certificateEnv, makeCertificates, type TestCertificates } from '../harness/tls.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('mysql-connections');
const passphrase = Buffer.from('correct horse battery staple');
const CERT_USER = 'tidemark_agent';
let certificates: TestCertificates;
let db: MariaDBServer;
let holder: ChildProcess | undefined;
let repoCounter = 0;

const initRepository = () =>
  Repository.init(openStorage(`file://${workDir.path}/repos/${++repoCounter}`), passphrase, {
    scrypt: { N: 1024, r: 8, p: 1 },
  });

before(async () => {
  certificates = await makeCertificates(join(workDir.path, 'tls'), CERT_USER);
  db = await startMariaDB(workDir.path, { tls: { certificates, certUser: CERT_USER } });
  await db.sql('CREATE DATABASE shop');
  await db.sql(
    `CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;
     INSERT INTO shop.items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_300;
     CREATE TABLE shop.ledger (id INT PRIMARY KEY) ENGINE=InnoDB;`,
    'shop',
  );
});

after(async () => {
  holder?.kill('SIGKILL');
  await db?.stop();
  workDir.remove();
});

/** The agent's environment without a password: TLS settings only. */
const tlsEnv = (extra: Record<string, string> = {}) => certificateEnv(certificates, ['MYSQL_PWD'], extra);

describe('MariaDB over TLS with a client certificate', () => {
  test('backs up and restores with the certificate alone; without it the server refuses', async () => {
    const repository = await initRepository();
    const sourceUrl = `mysql://${CERT_USER}@127.0.0.1:${db.port}/shop`;
    const snapshot = await runBackup({ sourceUrl, repository, type: 'full', env: tlsEnv() });
    assert.equal(snapshot.objects?.find((o) => o.name === 'items')?.records, 300);
    const outcome = await runRestore({
      repository,
      snapshot,
      targetUrl: `mysql://${CERT_USER}@127.0.0.1:${db.port}/shop_copy`,
      mode: 'new',
      env: tlsEnv(),
    });
    assert.ok(outcome.restored.some((o) => o.name === 'items' && o.records === 300));
    const sum = (database: string) => db.sql(`SELECT COUNT(*), SUM(CRC32(name)) FROM ${database}.items`);
    assert.equal(await sum('shop_copy'), await sum('shop'));
    const withoutCert = tlsEnv({ TIDEMARK_DB_TLS_CERT: '', TIDEMARK_DB_TLS_KEY: '' });
    await assert.rejects(runBackup({ sourceUrl, repository, type: 'full', env: withoutCert }), (error: Error) => {
      assert.ok(isCode(error, 'SourceUnavailable'), error.message);
      assert.match(error.message, /Access denied for user 'tidemark_agent'/);
      return true;
    });
  });
});

describe('a dump that meets a metadata lock', () => {
  test('fails after the configured wait, naming the table and the sessions that may hold the lock', async () => {
    holder = spawn(
      'mariadb',
      ['--no-defaults', '--protocol=TCP', '--user=root', '--host=127.0.0.1', `--port=${db.port}`, 'shop'],
      { env: { ...process.env, MYSQL_PWD: db.password }, stdio: ['pipe', 'ignore', 'ignore'] },
    );
    holder.stdin?.write('LOCK TABLES ledger WRITE; SELECT SLEEP(600);\n');
    await waitUntil(
      'the lock is held',
      async () =>
        (await db.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'User sleep'")).trim() === '1',
      { timeoutMs: 10_000 },
    );
    const repository = await initRepository();
    const started = Date.now();
    await assert.rejects(
      runBackup({
        sourceUrl: `mysql://root@127.0.0.1:${db.port}/shop`,
        repository,
        type: 'full',
        env: { ...process.env, MYSQL_PWD: db.password, TIDEMARK_LOCK_WAIT_TIMEOUT: '2s' },
      }),
      (error: Error) => {
        assert.ok(isCode(error, 'SourceUnavailable'), error.message);
        assert.match(error.message, /waited 2 s for a metadata lock on table `ledger`/);
        assert.match(
          error.message,
          /sessions in shop that may hold it: id \d+ \(user root@127\.0\.0\.1, \d+ s User sleep: SELECT SLEEP\(600\)\)/,
        );
        return true;
      },
    );
    assert.ok(Date.now() - started < 60_000, 'the configured 2 s applied, not the server default of a day');
    assert.deepEqual(await repository.snapshots(), [], 'a failed dump leaves no snapshot');
    const stuck = await db.sql(
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock'",
    );
    assert.equal(stuck.trim(), '0', 'no dump session is left waiting');
  });
});
