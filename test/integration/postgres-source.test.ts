// The PostgreSQL source against a real PostgreSQL server: consistent dumps under concurrent writes with
// row counts from the dump's own snapshot, backed up into a real repository and restored from it.
// R-BACKUP (consistent dump, counts, credentials), R-RESTORE (new/replace, post-restore SQL), R-VERIFY.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCode, type TidemarkError } from '../../src/errors.ts';
import { backupStreams, type StreamSource } from '../../src/repository/backup.ts';
import { prefixes } from '../../src/repository/format.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { PostgresSource } from '../../src/sources/postgres/postgres.ts';
import type { DatabaseRestoreOptions, ObjectCount } from '../../src/sources/source.ts';
import { freePort } from '../harness/ports.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('postgres-source');
const passphrase = Buffer.from('correct horse battery staple');
const EVENTS = 1_000_000;
let pg: PostgresServer;
let source: PostgresSource;
let largeObject: string;
let repoCounter = 0;

const initRepository = () =>
  Repository.init(openStorage(`file://${workDir.path}/repos/${++repoCounter}`), passphrase, {
    scrypt: { N: 1024, r: 8, p: 1 },
  });

/** Names and counts in name order (backups also record checksums and ranges: table-stats-postgres.test.ts). */
const byName = (counts: ObjectCount[]) =>
  counts
    .map(({ name, records }) => ({ name, records }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
const countOf = (counts: ObjectCount[], name: string) => counts.find((c) => c.name === name)?.records;

async function snapshotNames(repository: Repository): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of repository.storage.list(prefixes.snapshots)) names.push(blob.name);
  return names;
}

/** Streams one dump out of the repository into `source.restore`, as the restore agent does. */
async function restoreFrom(
  repository: Repository,
  snapshot: Snapshot,
  stream: string,
  options: DatabaseRestoreOptions,
) {
  const pipe = new PassThrough();
  const writing = restoreStream(repository, snapshot, pipe, stream);
  writing.catch(() => undefined); // when the restore is refused, the pipe is destroyed under the writer
  const result = await source.restore(pipe, options);
  await writing;
  return result;
}

/** A per-table content checksum of every table of `database`, for comparing copies. */
async function checksums(database: string): Promise<Record<string, string>> {
  const tables = await source.countRows(database);
  const sums = await Promise.all(
    tables.map(({ name }) => {
      const [schema, table] = name.split(/\.(?=[^.]*$)/) as [string, string];
      const ident = `"${schema.replaceAll('"', '""')}"."${table.replaceAll('"', '""')}"`;
      return pg.psql(`select md5(coalesce(string_agg(t::text, ',' order by t::text), '')) from ${ident} t`, database);
    }),
  );
  return Object.fromEntries(tables.map(({ name }, i) => [name, sums[i]?.trim() ?? '']));
}

const count = async (sql: string, db = 'shop') => Number((await pg.psql(sql, db)).trim());

/** Inserts an order with its two lines per transaction until told to stop: a dump taken from one
 * snapshot always holds exactly twice as many lines as orders. */
function startWriter(): { process: ChildProcess; stop(): Promise<void> } {
  const loop = `do $$
    declare o bigint;
    begin
      loop
        exit when (select stop from app.writer_control);
        insert into app.orders (customer_id, status, total) values (1 + (random() * 99)::int, 'new', row(9.99, 'EUR')::billing.money)
          returning id into o;
        insert into app.order_lines (order_id, qty) values (o, 1), (o, 2);
        commit;
        perform pg_sleep(0.001);
      end loop;
    end $$`;
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'shop', '-c', loop], {
    env: { ...process.env, ...pg.env },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    process: child,
    async stop() {
      await pg.psql('update app.writer_control set stop = true', 'shop');
      assert.equal(await exited, 0, 'the writer loop failed');
    },
  };
}

/** Command lines of this process's children (pg_dump, psql), to prove no password is in argv. */
function childCommandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // exited meanwhile
    }
  }
  return lines;
}

before(async () => {
  pg = await startPostgres(workDir.path);
  await pg.psql('create database shop');
  await pg.psql(
    `create schema app;
     create schema billing;
     create schema "Audit Trail";
     create type app.order_status as enum ('new', 'paid', 'shipped');
     create type billing.money as (amount numeric(12, 2), currency char(3));
     create table app.customers (id serial primary key, email text not null, name text);
     insert into app.customers (email, name) select 'c' || g || '@shop.example', 'Customer ' || g from generate_series(1, 100) g;
     create table app.orders (id bigserial primary key, customer_id int references app.customers, status app.order_status,
                              total billing.money, created timestamptz default now());
     create table app.order_lines (id bigserial primary key, order_id bigint references app.orders, qty int);
     insert into app.orders (customer_id, status, total)
       select 1 + g % 100, (enum_range(null::app.order_status))[1 + g % 3], row(g, 'EUR')::billing.money from generate_series(1, 500) g;
     insert into app.order_lines (order_id, qty) select id, q from app.orders, (values (1), (2)) v(q);
     create view app.order_totals as select customer_id, count(*) as orders from app.orders group by customer_id;
     create sequence app.invoice_no;
     select setval('app.invoice_no', 4242);
     create table billing.events (id bigint primary key, amount int);
     insert into billing.events select g, g % 1000 from generate_series(1, ${EVENTS}) g;
     create table billing.ledger (day date not null, amount int) partition by range (day);
     create table billing.ledger_2025 partition of billing.ledger for values from ('2025-01-01') to ('2026-01-01');
     create table billing.ledger_2026 partition of billing.ledger for values from ('2026-01-01') to ('2027-01-01');
     insert into billing.ledger select date '2025-06-01' + g, g from generate_series(1, 400) g;
     create unlogged table app.sessions (token text primary key);
     insert into app.sessions select md5(g::text) from generate_series(1, 50) g;
     create table "Audit Trail"."Log ""Entries""" (at timestamptz, what text);
     insert into "Audit Trail"."Log ""Entries""" values ('2026-01-01', E'tab\\there, newline\\nthere, backslash \\\\. and \\\\.');
     create table app.empty_table (id int);
     create table app.writer_control (stop boolean);
     insert into app.writer_control values (false);
     create table app.documents (id int primary key, content oid);
     vacuum analyze;`,
    'shop',
  );
  largeObject = (await pg.psql("select lo_from_bytea(0, 'a large object, kept by tidemark')", 'shop')).trim();
  await pg.psql(`insert into app.documents values (1, ${largeObject})`, 'shop');
  source = new PostgresSource({
    host: pg.host,
    port: pg.port,
    user: pg.user,
    password: pg.password,
    databases: ['shop'],
  });
});

after(async () => {
  await pg?.stop();
  workDir.remove();
});

describe('PostgresSource', () => {
  test('describes the source without its password', () => {
    assert.equal(source.description, `postgresql://postgres@127.0.0.1:${pg.port}/shop`);
    const all = new PostgresSource({ host: pg.host, port: pg.port, user: 'postgres', databases: 'all' });
    assert.equal(all.description, `postgresql://postgres@127.0.0.1:${pg.port}/*`);
  });

  let atBackup: { repository: Repository; snapshot: Snapshot; counts: ObjectCount[] };

  test('a backup under concurrent writes is consistent: counts come from the dump snapshot, and a restore matches them', async (t) => {
    const repository = await initRepository();
    const writer = startWriter();
    try {
      await waitUntil('the writer inserting', async () => (await count('select count(*) from app.orders')) >= 520, {
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      const ordersBefore = await count('select count(*) from app.orders');
      await source.check();
      const dump = await source.dump();
      let commandLines: string[] = [];
      const streams: StreamSource[] = dump.streams.map((s) => ({
        name: s.name,
        data: (async function* () {
          for await (const chunk of s.data) {
            if (commandLines.length === 0) commandLines = childCommandLines();
            yield chunk;
          }
        })(),
      }));
      const started = Date.now();
      const snapshot = await backupStreams(repository, streams, {
        type: 'full',
        source: source.description,
        objects: dump.objects,
        skipped: dump.skipped,
      });
      const seconds = (Date.now() - started) / 1000;
      const ordersAfter = await count('select count(*) from app.orders');
      assert.ok(ordersAfter > ordersBefore, 'the writer kept inserting during the backup');
      assert.ok(
        commandLines.some((line) => line.includes('pg_dump')),
        `pg_dump ran: ${commandLines}`,
      );
      assert.ok(!commandLines.some((line) => line.includes(pg.password)), 'no password in any command line');

      const counts = dump.objects();
      assert.deepEqual(dump.skipped(), []);
      assert.equal(snapshot.source, source.description);
      assert.deepEqual(snapshot.objects, counts, 'the snapshot records the counts');
      const orders = countOf(counts, 'app.orders') ?? 0;
      assert.ok(
        orders >= ordersBefore && orders < ordersAfter,
        `dumped ${orders} orders between ${ordersBefore} and ${ordersAfter}`,
      );
      assert.equal(countOf(counts, 'app.order_lines'), 2 * orders, 'orders and their lines come from one snapshot');
      assert.equal(countOf(counts, 'billing.events'), EVENTS);
      assert.equal(countOf(counts, 'billing.ledger_2025'), 213);
      assert.equal(countOf(counts, 'billing.ledger_2026'), 187);
      assert.equal(countOf(counts, 'app.sessions'), 50, 'unlogged tables are dumped with their rows');
      assert.equal(countOf(counts, 'app.empty_table'), 0);
      assert.equal(countOf(counts, 'Audit Trail.Log "Entries"'), 1);
      assert.equal(countOf(counts, 'billing.ledger'), undefined, 'a partitioned parent holds no rows itself');

      const restored = await restoreFrom(repository, snapshot, 'shop.sql', { database: 'shop_at_backup', mode: 'new' });
      assert.deepEqual(byName(restored.objects), byName(counts), 'restored counts equal the counts of the dump');
      const maxId = await count('select max(id) from app.orders', 'shop_at_backup');
      assert.equal(
        await count(`select count(*) from app.orders where id <= ${maxId}`),
        orders,
        'a prefix of the live rows',
      );
      assert.ok((await count('select count(*) from app.orders')) > orders, 'the live table has moved on');
      atBackup = { repository, snapshot, counts };
      t.diagnostic(`backup of ${snapshot.summary.logicalBytes} bytes under writes took ${seconds.toFixed(1)} s`);
    } finally {
      await writer.stop();
    }
  });

  let copy: { repository: Repository; snapshot: Snapshot };

  test('at a quiet moment, a restore into a new database has identical counts and per-table checksums', async () => {
    const { repository, snapshot: parent } = atBackup;
    const dump = await source.dump();
    const snapshot = await backupStreams(repository, dump.streams, {
      type: 'incremental',
      parent,
      source: source.description,
    });
    assert.ok(
      // Chunks average 1 MiB on a ~10 MiB dump: the rows the writer appended to two tables touch two
      // or three chunks, so a quarter was too tight to hold; half still shows the rest was shared.
      snapshot.summary.newBytes < snapshot.summary.logicalBytes / 2,
      `plain dumps deduplicate: ${snapshot.summary.newBytes} new of ${snapshot.summary.logicalBytes} bytes`,
    );
    const live = await source.countRows('shop');
    assert.deepEqual(byName(dump.objects()), live);

    const restored = await restoreFrom(repository, snapshot, 'shop.sql', { database: 'shop_copy', mode: 'new' });
    assert.deepEqual(restored.objects, live);
    assert.deepEqual(await checksums('shop_copy'), await checksums('shop'));
    copy = { repository, snapshot };
  });

  test('types, the view, sequences and the large object survive the restore', async () => {
    const same = async (sql: string) => {
      const restored = await pg.psql(sql, 'shop_copy');
      assert.equal(restored, await pg.psql(sql, 'shop'), sql);
      return restored;
    };
    await same('select enum_range(null::app.order_status)::text');
    await same('select total from app.orders order by id limit 3');
    await same('select * from app.order_totals order by customer_id');
    assert.equal((await same('select last_value from app.invoice_no')).trim(), '4242');
    await same("select last_value from pg_sequences where schemaname = 'app' and sequencename = 'orders_id_seq'");
    const next = await count("select nextval('app.orders_id_seq')", 'shop_copy');
    assert.ok(next > (await count('select max(id) from app.orders', 'shop_copy')));
    const content = `select encode(lo_get(content), 'escape') from app.documents where id = 1`;
    assert.equal((await same(content)).trim(), 'a large object, kept by tidemark');
    assert.equal((await pg.psql('select count(*) from pg_largeobject_metadata', 'shop_copy')).trim(), '1');
  });

  test('a restore into a non-empty database without replace is refused and changes nothing', async () => {
    const before = await checksums('shop_copy');
    await assert.rejects(
      restoreFrom(copy.repository, copy.snapshot, 'shop.sql', { database: 'shop_copy', mode: 'new' }),
      (error: TidemarkError) => {
        assert.ok(isCode(error, 'InvalidArgument'), error.message);
        assert.match(error.message, /database "shop_copy" .* is not empty .*mode replace/);
        return true;
      },
    );
    assert.deepEqual(await checksums('shop_copy'), before);
    assert.equal(
      await count("select count(*) from pg_database where datname like 'tidemark_restore_%'", 'postgres'),
      0,
    );
  });

  test('a failed restore leaves the target as it was, in either mode', async () => {
    const before = await checksums('shop_copy');
    const broken = () => Readable.from([Buffer.from('create table public.half_done (id int);\nselect 1 / 0;\n')]);
    await assert.rejects(
      source.restore(broken(), { database: 'shop_copy', mode: 'replace' }),
      /<stdin>:2: ERROR: division by zero/,
    );
    assert.deepEqual(await checksums('shop_copy'), before);
    await assert.rejects(source.restore(broken(), { database: 'never_created', mode: 'new' }), /division by zero/);
    assert.equal(await count("select count(*) from pg_database where datname = 'never_created'", 'postgres'), 0);
    await assert.rejects(
      restoreFrom(copy.repository, copy.snapshot, 'shop.sql', {
        database: 'shop_copy',
        mode: 'replace',
        postRestoreSQL: 'update app.no_such_table set x = 1',
      }),
      /post-restore SQL failed.*no_such_table/,
    );
    assert.deepEqual(await checksums('shop_copy'), before);
    assert.equal(
      await count("select count(*) from pg_database where datname like 'tidemark_restore_%'", 'postgres'),
      0,
    );
  });

  test('replace ends sessions on the target, restores, and runs the post-restore SQL before anyone sees the data', async () => {
    const session = spawn('psql', ['-X', '-q', '-d', 'shop_copy', '-c', 'select pg_sleep(60)'], {
      env: { ...process.env, ...pg.env },
      stdio: 'ignore',
    });
    const sessionEnded = new Promise<number | null>((resolve) => session.once('exit', resolve));
    await waitUntil(
      'a session on shop_copy',
      async () => (await count("select count(*) from pg_stat_activity where datname = 'shop_copy'", 'postgres')) > 0,
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    const result = await restoreFrom(copy.repository, copy.snapshot, 'shop.sql', {
      database: 'shop_copy',
      mode: 'replace',
      postRestoreSQL: "update app.customers set email = 'customer' || id || '@example.invalid', name = null;",
    });
    assert.notEqual(await sessionEnded, 0, 'the session on the replaced database was ended');
    assert.deepEqual(result.objects, await source.countRows('shop'));
    assert.equal(
      await count("select count(*) from app.customers where email not like '%@example.invalid'", 'shop_copy'),
      0,
    );
    assert.equal(await count('select count(*) from app.customers where name is not null', 'shop_copy'), 0);
    const { 'app.customers': _live, ...others } = await checksums('shop');
    const { 'app.customers': _anonymised, ...restoredOthers } = await checksums('shop_copy');
    assert.deepEqual(restoredOthers, others);
  });

  test('all databases: roles as globals.sql, then one stream per database, counts named database.schema.table', async () => {
    await pg.psql('create database tiny; create role reporter login');
    await pg.psql('create table t (id int); insert into t values (1), (2), (3)', 'tiny');
    const all = new PostgresSource({
      host: pg.host,
      port: pg.port,
      user: pg.user,
      password: pg.password,
      databases: 'all',
    });
    await all.check();
    const dump = await all.dump();
    assert.deepEqual(
      dump.streams.map((s) => s.name),
      ['globals.sql', 'postgres.sql', 'shop.sql', 'shop_at_backup.sql', 'shop_copy.sql', 'tiny.sql'],
    );
    const text: Record<string, string> = {};
    for (const stream of dump.streams.filter((s) => ['globals.sql', 'tiny.sql'].includes(s.name))) {
      const chunks: Buffer[] = [];
      for await (const chunk of stream.data) chunks.push(chunk);
      text[stream.name] = Buffer.concat(chunks).toString();
    }
    assert.match(text['globals.sql'] ?? '', /CREATE ROLE reporter;/);
    assert.match(text['tiny.sql'] ?? '', /COPY public\.t \(id\) FROM stdin;/);
    assert.deepEqual(byName(dump.objects()), [{ name: 'tiny.public.t', records: 3 }]);

    const shop = dump.streams.find((s) => s.name === 'shop.sql') as StreamSource;
    for await (const _chunk of shop.data) break; // a consumer giving up ends pg_dump
    const pgDumps = () => childCommandLines().filter((line) => line.includes('pg_dump'));
    for (let waited = 0; pgDumps().length > 0 && waited < 5000; waited += 50) await sleep(50);
    assert.deepEqual(pgDumps(), []);
  });

  describe('failures before any snapshot', () => {
    const attempts: Record<string, () => Promise<PostgresSource>> = {
      'a wrong password': async () =>
        new PostgresSource({
          host: pg.host,
          port: pg.port,
          user: pg.user,
          password: 'not-the-password',
          databases: ['shop'],
        }),
      'an unreachable host': async () =>
        new PostgresSource({
          host: '127.0.0.1',
          port: await freePort(),
          user: pg.user,
          password: pg.password,
          databases: ['shop'],
        }),
      'a missing database': async () =>
        new PostgresSource({
          host: pg.host,
          port: pg.port,
          user: pg.user,
          password: pg.password,
          databases: ['shop', 'nope'],
        }),
    };
    const reasons: Record<string, RegExp> = {
      'a wrong password': /password authentication failed/,
      'an unreachable host': /Connection refused/,
      'a missing database': /database "nope" does not exist/,
    };

    for (const [what, make] of Object.entries(attempts)) {
      test(`${what} fails in check(), naming the source, and writes no snapshot`, async () => {
        const failing = await make();
        const repository = await initRepository();
        const backup = async () => {
          await failing.check();
          const dump = await failing.dump();
          await backupStreams(repository, dump.streams, { type: 'full', source: failing.description });
        };
        await assert.rejects(backup(), (error: TidemarkError) => {
          assert.ok(isCode(error, 'SourceUnavailable'), `${error.code}: ${error.message}`);
          assert.ok(error.message.startsWith(failing.description), error.message);
          assert.match(error.message, reasons[what] as RegExp);
          assert.ok(!error.message.includes(pg.password) && !error.message.includes('not-the-password'));
          return true;
        });
        assert.deepEqual(await snapshotNames(repository), []);
      });
    }

    test('pg_dump failing mid-way fails the stream and the backup, and writes no snapshot', async () => {
      const secret = 'limited-secret-password';
      await pg.psql(`create role limited login password '${secret}'; grant connect on database shop to limited;`);
      const limited = new PostgresSource({
        host: pg.host,
        port: pg.port,
        user: 'limited',
        password: secret,
        databases: ['shop'],
      });
      await limited.check();
      const repository = await initRepository();
      const dump = await limited.dump();
      await assert.rejects(
        backupStreams(repository, dump.streams, { type: 'full', source: limited.description }),
        (error: TidemarkError) => {
          assert.ok(isCode(error, 'SourceUnavailable'), `${error.code}: ${error.message}`);
          assert.match(
            error.message,
            /pg_dump of database "shop" on postgresql:\/\/limited@.*failed.*permission denied/,
          );
          assert.ok(!error.message.includes(secret));
          return true;
        },
      );
      assert.deepEqual(await snapshotNames(repository), []);
    });
  });
});
