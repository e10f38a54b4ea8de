// What a PostgreSQL backup records per table, and how a restored copy and the live source compare with
// it (issue 13: restore drills compare checksums, audits compare counts, key ranges and timestamps).
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { PostgresSource } from '../../src/sources/postgres/postgres.ts';
import type { ObjectCount } from '../../src/sources/source.ts';
import { compareTables, describeDifferences } from '../../src/sources/verify.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('table-stats-postgres');
let pg: PostgresServer;
let source: PostgresSource;
let repository: Repository;
let snapshot: Snapshot;

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
// Names and values a tenant controls: quotes, tabs, newlines, backslashes, `\.`, unicode, 63 bytes.
const SCHEMA = 'we"ird\tsch\nema \\. ☃';
const TABLE = "ta'ble;\\N\r\n-- x";
const LONG = `l${'é'.repeat(31)}`; // 63 bytes, the longest name PostgreSQL keeps
const HOSTILE = `${SCHEMA}.${TABLE}`;
const ROWS = 200;

const sourceFor = (databases: string[]) =>
  new PostgresSource({
    host: pg.host,
    port: pg.port,
    user: pg.user,
    password: pg.password,
    databases,
    timestampColumns: { 'public.events': 'happened' },
  });

const named = (objects: readonly ObjectCount[] | undefined, name: string) => objects?.find((o) => o.name === name);

before(async () => {
  pg = await startPostgres(workDir.path);
  await pg.psql('create database app');
  await pg.psql(
    `create schema ${ident(SCHEMA)};
     create table ${ident(SCHEMA)}.${ident(TABLE)} (id bigint primary key, note text, "up\tdated_at" timestamptz, data bytea);
     insert into ${ident(SCHEMA)}.${ident(TABLE)}
       select i, E'tab\\there\\nnew line \\\\. back\\\\slash '' quote ☃ ' || i, timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute', '\\x00ff0a'
         from generate_series(-5, ${ROWS - 6}) i;
     create table public.nokey (a text, b integer);
     insert into public.nokey values ('same', 1), ('same', 1), (null, null);
     create table public.textkey (code text primary key, created_at timestamp, updated_at timestamp);
     insert into public.textkey values ('b', '2020-01-01', '2021-06-01 12:00'), ('a', '2020-02-01', null);
     create table public.events (id integer primary key, happened timestamptz, logged timestamptz);
     insert into public.events values (1, '2024-03-01 10:00+02', '2030-01-01'), (2, '2024-03-01 09:00+00', null);
     create table public.${ident(LONG)} (id smallint primary key);
     insert into public.${ident(LONG)} values (3), (-2);
     create table public.empty (id integer primary key, at timestamptz);`,
    'app',
  );
  await pg.psql('create database copy');
  source = sourceFor(['app']);
  repository = await Repository.init(openStorage(`file://${workDir.path}/repo`), Buffer.from('stats'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const dump = await source.dump();
  snapshot = await backupStreams(repository, dump.streams, {
    type: 'full',
    source: source.description,
    objects: dump.objects,
    skipped: dump.skipped,
  });
  const pipe = new PassThrough();
  const writing = restoreStream(repository, snapshot, pipe, 'app.sql');
  await sourceFor(['copy']).restore(pipe, { database: 'copy', mode: 'replace' });
  await writing;
});

after(async () => {
  await pg?.stop();
  workDir.remove();
});

describe('a PostgreSQL backup records per table', () => {
  test('a checksum, the integer key range and the newest timestamp, hostile names included', () => {
    const objects = snapshot.objects ?? [];
    assert.deepEqual(
      objects.map((o) => o.name).sort(),
      [HOSTILE, 'public.empty', 'public.events', `public.${LONG}`, 'public.nokey', 'public.textkey'].sort(),
    );
    for (const o of objects) assert.match(o.checksum ?? '', /^[0-9a-f]{32}$/, o.name);
    assert.deepEqual(named(objects, HOSTILE)?.key, { column: 'id', min: '-5', max: String(ROWS - 6) });
    assert.equal(named(objects, HOSTILE)?.records, ROWS);
    assert.equal(named(objects, HOSTILE)?.newest?.column, 'up\tdated_at');
    assert.match(named(objects, HOSTILE)?.newest?.value ?? '', /^2025-01-01 03:14:00/);
    assert.deepEqual(named(objects, `public.${LONG}`)?.key, { column: 'id', min: '-2', max: '3' });
    assert.equal(named(objects, 'public.textkey')?.key, undefined, 'no range of a text key');
    assert.deepEqual(named(objects, 'public.textkey')?.newest, { column: 'updated_at', value: '2021-06-01 12:00:00' });
    assert.equal(named(objects, 'public.events')?.newest?.column, 'happened', 'the column the policy names');
    assert.match(named(objects, 'public.events')?.newest?.value ?? '', /^2024-03-01 09:00:00/);
    assert.equal(named(objects, 'public.nokey')?.key, undefined);
    assert.deepEqual(named(objects, 'public.empty'), { name: 'public.empty', records: 0, checksum: '0'.repeat(32) });
  });
});

describe('tableStats', () => {
  test('of the restored copy, with checksums, equals what the backup recorded', async () => {
    const observed = await sourceFor(['copy']).tableStats('copy', {
      checksums: true,
      timestampColumns: { 'public.events': 'happened' },
    });
    const comparison = compareTables(snapshot.objects ?? [], observed);
    assert.ok(comparison.ok, describeDifferences(comparison));
    assert.ok(comparison.tables.every((t) => t.checksumEqual === true));
  });

  test('one value changed in the copy: the checksum differs for exactly that table', async () => {
    await pg.psql(`update ${ident(SCHEMA)}.${ident(TABLE)} set note = note || 'x' where id = 7`, 'copy');
    const comparison = compareTables(
      snapshot.objects ?? [],
      await sourceFor(['copy']).tableStats('copy', {
        checksums: true,
        timestampColumns: { 'public.events': 'happened' },
      }),
    );
    assert.deepEqual(
      comparison.tables.filter((t) => !t.ok).map((t) => [t.name, t.checksumEqual, t.recordsDelta]),
      [[HOSTILE, false, 0]],
    );
    assert.match(describeDifferences(comparison), /content differs \(checksum\)/);
  });

  test('of the live source, by SQL: equal to the backup, then N rows later N more and the key moved', async () => {
    const options = { checksums: false, timestampColumns: { 'public.events': 'happened' } };
    const now = await source.tableStats('app', options);
    assert.ok(now.every((o) => o.checksum === undefined));
    const same = compareTables(snapshot.objects ?? [], now);
    assert.ok(same.ok, describeDifferences(same));
    assert.ok(same.tables.some((t) => t.keyEqual === true) && same.tables.some((t) => t.newestEqual === true));

    await pg.psql(
      `insert into ${ident(SCHEMA)}.${ident(TABLE)} select i, ${literal('later')}, now(), null from generate_series(1000, 1006) i;
       insert into public.nokey values ('x', 2);`,
      'app',
    );
    const later = compareTables(snapshot.objects ?? [], await source.tableStats('app', options));
    const grown = Object.fromEntries(
      later.tables.filter((t) => t.recordsDelta !== 0).map((t) => [t.name, t.recordsDelta]),
    );
    assert.deepEqual(grown, { [HOSTILE]: 7, 'public.nokey': 1 });
    const hostile = later.tables.find((t) => t.name === HOSTILE);
    assert.equal(hostile?.observed.key?.max, '1006');
    assert.equal(hostile?.keyEqual, false);
    assert.equal(hostile?.newestEqual, false);
  });
});
