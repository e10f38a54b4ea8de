// The audit agent task (R-VERIFY) against real servers and a real directory: rows inserted after the
// backup are reported as missing per table, exactly; files created, changed or removed since are listed;
// after the next backup nothing is. The audit only reads the source.
import assert from 'node:assert/strict';
import { appendFile, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBackup } from '../../src/agent/run-backup.ts';
import { type AuditReport, runAudit } from '../../src/agent/tasks/audit.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { timestampColumnsFrom } from '../../src/sources/table-stats.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('audit');
const passphrase = Buffer.from('audit test passphrase');
let repoCounter = 0;

const initRepository = () =>
  Repository.init(openStorage(`file://${workDir.path}/repos/${++repoCounter}`), passphrase, {
    scrypt: { N: 1024, r: 8, p: 1 },
  });

/** Per table: [missing, removed], for the tables the audit lists. */
const differences = (report: AuditReport) =>
  Object.fromEntries((report.tables?.differences.items ?? []).map((d) => [d.name, [d.missing, d.removed]]));

/** Backs up, changes the source, audits; then backs up again and audits once more. */
async function auditAroundChange(
  sourceUrl: string,
  env: NodeJS.ProcessEnv,
  change: () => Promise<void>,
  extra: Partial<Parameters<typeof runAudit>[0]> = {},
): Promise<{ before: AuditReport; after: AuditReport }> {
  const repository = await initRepository();
  const backup = () =>
    runBackup({ sourceUrl, sourceName: 'tenants/nightly/main', repository, type: 'full', env, ...extra });
  const first = await backup();
  await change();
  const timestampColumns = timestampColumnsFrom(env);
  const audit = (snapshot: string) =>
    runAudit({ sourceUrl, repository, snapshot, env, ...(timestampColumns ? { timestampColumns } : {}), ...extra });
  const beforeReport = await audit(first.id);
  const second = await backup();
  return { before: beforeReport, after: await audit(second.id) };
}

describe('audit of a PostgreSQL database', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres(workDir.path);
    await pg.psql('create database shop');
    await pg.psql(
      `create table orders (id bigint primary key, placed timestamptz not null);
       insert into orders select g, '2026-01-01'::timestamptz + g * interval '1 minute' from generate_series(1, 500) g;
       create table customers (id int primary key, name text);
       insert into customers select g, 'c' || g from generate_series(1, 40) g;
       create table settings (k text, v text);
       insert into settings values ('a', '1'), ('b', '2');
       create schema audit; create table audit.log (id serial primary key, line text);`,
      'shop',
    );
  });
  after(() => pg?.stop());

  test('rows inserted after the backup are missing, exactly, per table; after the next backup none are', async () => {
    const { before: report, after: again } = await auditAroundChange(
      `postgresql://${pg.user}@${pg.host}:${pg.port}/shop`,
      { ...process.env, ...pg.env, TIDEMARK_TIMESTAMP_COLUMNS: '{"public.orders": "placed"}' },
      () =>
        pg
          .psql(
            `insert into orders select g, now() from generate_series(501, 517) g;
             insert into customers select g, 'c' || g from generate_series(41, 45) g;
             create table late (id int); insert into late values (1), (2), (3);`,
            'shop',
          )
          .then(() => undefined),
    );
    assert.deepEqual(differences(report), {
      'public.orders': [17, 0],
      'public.customers': [5, 0],
      'public.late': [3, 0],
    });
    assert.equal(report.missingObjects, 17 + 5 + 3);
    assert.equal(report.tables?.compared, 5, 'orders, customers, settings, audit.log and the new late');
    const late = report.tables?.differences.items.find((d) => d.name === 'public.late');
    assert.equal(late?.recorded, undefined, 'a table created since is not in the backup');
    const orders = report.tables?.differences.items.find((d) => d.name === 'public.orders');
    assert.deepEqual(orders?.keyAdvanced, { column: 'id', recorded: '500', live: '517' });
    assert.equal(orders?.newerRows?.column, 'placed', 'the named timestamp column');
    assert.ok(Date.parse(orders?.newerRows?.live ?? '') > Date.parse('2026-01-02'), orders?.newerRows?.live);
    assert.equal(again.missingObjects, 0);
    assert.deepEqual(differences(again), {});
  });

  test('rows deleted since are removed, not missing; a row deleted and another inserted still shows: the key moved on', async () => {
    const { before: report } = await auditAroundChange(
      `postgresql://${pg.user}@${pg.host}:${pg.port}/shop`,
      { ...process.env, ...pg.env },
      () =>
        pg
          .psql(
            `delete from settings where k = 'a';
             delete from customers where id = 1; insert into customers values (1000, 'late');`,
            'shop',
          )
          .then(() => undefined),
    );
    assert.deepEqual(differences(report), { 'public.settings': [0, 1], 'public.customers': [0, 0] });
    const customers = report.tables?.differences.items.find((d) => d.name === 'public.customers');
    assert.deepEqual(customers?.keyAdvanced, { column: 'id', recorded: '45', live: '1000' });
    assert.equal(report.missingObjects, 0, 'counts are a lower bound');
  });
});

describe('audit of a MariaDB database', () => {
  let db: MariaDBServer;
  before(async () => {
    db = await startMariaDB(workDir.path);
    await db.sql(
      `CREATE DATABASE shop; USE shop;
       CREATE TABLE orders (id BIGINT PRIMARY KEY, placed DATETIME NOT NULL);
       INSERT INTO orders SELECT seq, '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_300;
       CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20));
       INSERT INTO customers SELECT seq, CONCAT('c', seq) FROM seq_1_to_30;
       CREATE TABLE settings (k VARCHAR(10), v VARCHAR(10));
       INSERT INTO settings VALUES ('a', '1');`,
    );
  });
  after(() => db?.stop());

  test('rows inserted after the backup are missing, exactly, per table; after the next backup none are', async () => {
    const { before: report, after: again } = await auditAroundChange(
      `mysql://${db.user}@${db.host}:${db.port}/shop`,
      { ...process.env, MYSQL_PWD: db.password },
      () =>
        db
          .sql(
            `INSERT INTO orders SELECT seq, NOW() FROM seq_301_to_309;
             INSERT INTO customers SELECT seq, CONCAT('c', seq) FROM seq_31_to_34;`,
            'shop',
          )
          .then(() => undefined),
    );
    assert.deepEqual(differences(report), { orders: [9, 0], customers: [4, 0] });
    const orders = report.tables?.differences.items.find((d) => d.name === 'orders');
    assert.deepEqual(orders?.keyAdvanced, { column: 'id', recorded: '300', live: '309' });
    assert.equal(report.missingObjects, 13);
    assert.equal(report.tables?.compared, 3);
    assert.equal(again.missingObjects, 0);
    assert.deepEqual(differences(again), {});
  });
});

describe('audit of a volume', () => {
  test('files created, changed and removed since the backup are listed; excluded ones are not; after the next backup none are', async () => {
    const root = join(workDir.path, 'volume');
    await mkdir(join(root, 'docs/2026'), { recursive: true });
    await writeFile(join(root, 'docs/2026/invoice-1.pdf'), 'one');
    await writeFile(join(root, 'docs/2026/invoice-2.pdf'), 'two');
    await writeFile(join(root, 'docs/readme.txt'), 'hello');
    await writeFile(join(root, 'docs/touched.txt'), 'same size');
    const { before: report, after: again } = await auditAroundChange(
      `file://${root}`,
      process.env,
      async () => {
        await writeFile(join(root, 'docs/2026/invoice-3.pdf'), 'three');
        await mkdir(join(root, 'scans'));
        await writeFile(join(root, 'scans/a.png'), 'png');
        await appendFile(join(root, 'docs/readme.txt'), ' world');
        await utimes(join(root, 'docs/touched.txt'), new Date('2030-01-01'), new Date('2030-01-01'));
        await rm(join(root, 'docs/2026/invoice-1.pdf'));
        await writeFile(join(root, 'docs/scratch.tmp'), 'excluded');
      },
      { excludes: ['*.tmp'] },
    );
    assert.deepEqual(report.files?.missing, { items: ['/docs/2026/invoice-3.pdf', '/scans/a.png'], total: 2 });
    assert.deepEqual(report.files?.removed, { items: ['/docs/2026/invoice-1.pdf'], total: 1 });
    assert.deepEqual(report.files?.changed, {
      items: [
        { path: '/docs/readme.txt', change: 'size,mtime' },
        { path: '/docs/touched.txt', change: 'mtime' },
      ],
      total: 2,
    });
    assert.equal(report.missingObjects, 4, 'two files not backed up and two changed since');
    assert.equal(report.files?.live, 5);
    assert.equal(again.missingObjects, 0);
    assert.deepEqual(again.files, {
      live: 5,
      missing: { items: [], total: 0 },
      removed: { items: [], total: 0 },
      changed: { items: [], total: 0 },
    });
  });
});
