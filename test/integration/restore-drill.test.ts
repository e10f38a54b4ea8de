// The drill agent task against real servers (issue 13): PostgreSQL and MariaDB, a filesystem
// repository. A drill restores every database of a snapshot into a tidemark_drill_ database of its
// own, checks the rows against the backup's record and drops it; a backup whose record disagrees
// with its data fails the drill; a drill server that is a live source is refused before anything is
// written; the cleanup mode drops what no running drill holds and keeps what one does. A volume drill
// restores into its scratch directory and re-reads every file. The source is unchanged throughout.
// (The operator side, SIGKILL and the alert: test/operator/restore-drill.test.ts, volume-drill.test.ts.)
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBackup } from '../../src/agent/run-backup.ts';
import { type DrillJobInput, type DrillResult, drill } from '../../src/agent/tasks/drill.ts';
import { TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { MySQLSource } from '../../src/sources/mysql/mysql.ts';
import { PostgresSource } from '../../src/sources/postgres/postgres.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('restore-drill-agent');
let pg: PostgresServer;
let maria: MariaDBServer;
let repository: Repository;
let pgEnv: NodeJS.ProcessEnv;
let mariaEnv: NodeJS.ProcessEnv;

before(async () => {
  [pg, maria] = await Promise.all([startPostgres(workDir.path), startMariaDB(workDir.path)]);
  repository = await Repository.init(
    openStorage(`file://${join(workDir.path, 'repository')}`, {}),
    Buffer.from('drill'),
    {
      scrypt: { N: 1024, r: 8, p: 1 },
    },
  );
  pgEnv = { ...process.env, PGPASSWORD: pg.password };
  mariaEnv = { ...process.env, MYSQL_PWD: maria.password };
  await pg.psql('create database shop; create database crm');
  await pg.psql(
    `create table orders (id int primary key, total int); insert into orders select g, g from generate_series(1, 500) g;
     create schema audit; create table audit.log (line text); insert into audit.log select 'l' || g from generate_series(1, 40) g;`,
    'shop',
  );
  await pg.psql('create table people (id int); insert into people select generate_series(1, 70);', 'crm');
  await maria.sql('CREATE DATABASE app');
  await maria.sql(
    'CREATE TABLE items (id INT PRIMARY KEY, name TEXT); INSERT INTO items SELECT seq, CONCAT("i", seq) FROM seq_1_to_300;',
    'app',
  );
});

after(async () => {
  await Promise.all([pg?.stop(), maria?.stop()]);
  workDir.remove();
});

const pgServer = () => `postgresql://${pg.user}@${pg.host}:${pg.port}/`;
const pgDatabases = async () =>
  (await pg.psql("select string_agg(datname, ',' order by datname) from pg_database")).trim();
const pgChecksum = async () =>
  `${await pgDatabases()} ${await pg.psql("select md5(string_agg(o::text, ',' order by id)) from orders o", 'shop')}`;
const drillDatabases = async () =>
  (await pg.psql("select datname from pg_database where datname like 'tidemark\\_%'")).trim();

describe('restore drill task', () => {
  test('PostgreSQL: each database of the snapshot is restored, checked table by table and dropped; the source unchanged', async () => {
    const before = await pgChecksum();
    const snapshot = await runBackup({
      sourceUrl: `postgresql://${pg.user}@${pg.host}:${pg.port}/shop,crm`,
      sourceName: 'tenants/shop/db',
      repository,
      type: 'full',
      env: pgEnv,
    });
    const result = await runDrill({ mode: 'drill', server: pgServer(), snapshotId: snapshot.id }, pgEnv);
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal(result.tablesChecked, 3);
    assert.equal(result.tablesChecksummed, 3, 'the restored copy is compared by content, not only by counts');
    assert.ok((result.rtoMs ?? -1) >= 0);
    assert.equal(await drillDatabases(), '');
    assert.equal(await pgChecksum(), before);
  });

  test('a backup whose record disagrees with its data (a count, a checksum) fails the drill, naming the tables; nothing is left', async () => {
    const dump = await new PostgresSource({ ...connection(), databases: ['shop'] }).dump();
    const snapshot = await backupStreams(repository, dump.streams, {
      type: 'full',
      tags: [],
      source: 'tenants/shop/miscounted',
      // One table recorded with a row more, another with other content (same count).
      objects: () =>
        dump
          .objects()
          .map((o) =>
            o.name === 'public.orders'
              ? { ...o, records: o.records + 1 }
              : o.name === 'audit.log'
                ? { ...o, checksum: '0'.repeat(o.checksum?.length ?? 32) }
                : o,
          ),
      skipped: () => [],
    });
    const result = await runDrill({ mode: 'drill', server: pgServer(), snapshotId: snapshot.id }, pgEnv);
    assert.equal(result.ok, false);
    assert.equal(result.error?.code, 'VerificationFailed');
    assert.match(result.error?.message ?? '', /public\.orders: 500 rows restored, 501 recorded/);
    assert.match(result.error?.message ?? '', /audit\.log: content checksum differs/);
    assert.equal(await drillDatabases(), '');
  });

  test('a drill server that is a live source is refused before anything is created', async () => {
    const snapshot = (await repository.snapshots()).find((s) => s.source === 'tenants/shop/db');
    assert.ok(snapshot);
    const before = await pgDatabases();
    const env = {
      ...pgEnv,
      TIDEMARK_LIVE_SOURCE_0_NAME: 'source db of policy shop (Secret pg-main)',
      TIDEMARK_LIVE_SOURCE_0_HOST: 'localhost',
      TIDEMARK_LIVE_SOURCE_0_PORT: String(pg.port),
    };
    const result = await runDrill({ mode: 'drill', server: pgServer(), snapshotId: snapshot.id }, env);
    assert.equal(result.error?.code, 'InvalidArgument');
    assert.match(result.error?.message ?? '', /is the server of source db of policy shop.*nothing was changed/);
    assert.equal(await pgDatabases(), before);
  });

  test('cleanup drops the drill databases nobody holds and keeps the one a running drill holds (PostgreSQL)', async () => {
    const server = new PostgresSource({ ...connection(), databases: ['postgres'] });
    const running = await server.reserveDrillDatabase();
    const killed = await server.reserveDrillDatabase();
    await pg.psql(`create database ${running.database}; create database ${killed.database}`);
    await killed.release(); // as when its agent is killed: the server ends the lock with the session
    const result = await runDrill({ mode: 'cleanup', server: pgServer() }, pgEnv);
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.deepEqual(result.cleanup, [`dropped database "${killed.database}" left by an interrupted restore drill`]);
    assert.equal(await drillDatabases(), running.database);
    await running.release();
    assert.equal(await server.dropDrillDatabase(running.database), undefined);
  });

  test('MariaDB: a drill restores, checks and drops; cleanup keeps a held drill database and drops a free one', async () => {
    const server = `mysql://${maria.user}@${maria.host}:${maria.port}/`;
    const before = await maria.sql('SELECT COUNT(*), SUM(id) FROM app.items');
    const snapshot = await runBackup({
      sourceUrl: `mysql://${maria.user}@${maria.host}:${maria.port}/app`,
      sourceName: 'tenants/app/db',
      repository,
      type: 'full',
      env: mariaEnv,
    });
    const result = await runDrill({ mode: 'drill', server, snapshotId: snapshot.id }, mariaEnv);
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal(result.tablesChecked, 1);
    assert.equal(result.tablesChecksummed, 1);
    const scratch = async () => (await maria.sql("SHOW DATABASES LIKE 'tidemark\\_%'")).trim();
    assert.equal(await scratch(), '');

    const mysql = new MySQLSource({
      host: maria.host,
      port: maria.port,
      user: maria.user,
      password: maria.password,
      databases: ['app'],
    });
    const running = await mysql.reserveDrillDatabase();
    const killed = await mysql.reserveDrillDatabase();
    await maria.sql(`CREATE DATABASE ${running.database}; CREATE DATABASE ${killed.database}`);
    await killed.release();
    const cleanup = await runDrill({ mode: 'cleanup', server: server }, mariaEnv);
    assert.deepEqual(cleanup.cleanup, [`dropped database "${killed.database}" left by an interrupted restore drill`]);
    assert.equal(await scratch(), running.database);
    await running.release();
    assert.equal(await mysql.dropDrillDatabase(running.database), undefined);
    assert.equal(await maria.sql('SELECT COUNT(*), SUM(id) FROM app.items'), before);
  });
});

describe('restore drill task: volumes', () => {
  test('a volume drill restores into tree/ of its scratch directory (lost+found and a first run left there are no matter), re-reads every file; the source unchanged', async () => {
    const source = join(workDir.path, 'documents');
    await mkdir(join(source, 'letters'), { recursive: true });
    await writeFile(join(source, 'readme.txt'), 'documents\n');
    await writeFile(join(source, 'letters', 'a.bin'), Buffer.alloc(200_000, 3));
    const snapshot = await runBackup({ sourceUrl: `file://${source}`, repository, type: 'full', env: process.env });
    const scratch = join(workDir.path, 'scratch');
    await mkdir(join(scratch, 'lost+found'), { recursive: true });
    await mkdir(join(scratch, 'tree'), { recursive: true });
    await writeFile(join(scratch, 'tree', 'half-restored.txt'), 'from a drill run before for this slot');
    const result = await runDrill({ mode: 'drill', server: `file://${scratch}`, snapshotId: snapshot.id }, process.env);
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal(result.filesChecked, 2);
    assert.equal(result.bytesChecked, 200_000 + 'documents\n'.length);
    assert.equal(typeof result.rtoMs, 'number');
    assert.equal(await readFile(join(scratch, 'tree', 'readme.txt'), 'utf8'), 'documents\n');
    assert.equal(await readFile(join(source, 'readme.txt'), 'utf8'), 'documents\n');
    const cleanup = await runDrill({ mode: 'cleanup', server: `file://${scratch}` }, process.env);
    assert.deepEqual(cleanup.cleanup, [], 'the operator deletes the scratch PVC: nothing for the task to drop');
  });
});

type Outcome = Partial<DrillResult> & { ok: boolean; error?: { code: string; message: string } };

/** The drill task as a Job runs it: its Job env read back by its input, run, a failure as the agent reports it. */
async function runDrill(job: DrillJobInput, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const vars = Object.fromEntries(drill.jobEnv(job).map((v) => [v.name, v.value]));
  try {
    const input = drill.input({ ...env, ...vars });
    return { ok: true, ...(await drill.run(input, { env, repository: async () => repository, onProgress: () => {} })) };
  } catch (error) {
    const code = error instanceof TidemarkError ? error.code : 'Internal';
    return { ok: false, error: { code, message: (error as Error).message } };
  }
}

function connection() {
  return { host: pg.host, port: pg.port, user: pg.user, password: pg.password };
}
