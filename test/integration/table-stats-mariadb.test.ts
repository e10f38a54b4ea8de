// What a MariaDB backup records per table, and how a restored copy and the live source compare with
// it (issue 13: restore drills compare checksums, audits compare counts, key ranges and timestamps).
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { MySQLSource } from '../../src/sources/mysql/mysql.ts';
import type { ObjectCount } from '../../src/sources/source.ts';
import { compareTables, describeDifferences } from '../../src/sources/verify.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('table-stats-mariadb');
let db: MariaDBServer;
let repository: Repository;
let snapshot: Snapshot;

const ident = (name: string) => `\`${name.replaceAll('`', '``')}\``;
// Names and values a tenant controls: backticks, quotes, tabs, newlines, parentheses, commas, unicode.
const TABLE = "we`ird\t,(t);\n'☃";
const LONG = `${'é'.repeat(63)}x`; // 64 characters, the longest name MariaDB takes
const ROWS = 200;
const timestampColumns = { events: 'happened' };

const source = (database: string) =>
  new MySQLSource({
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    databases: [database],
    timestampColumns,
  });
const named = (objects: readonly ObjectCount[] | undefined, name: string) => objects?.find((o) => o.name === name);

before(async () => {
  db = await startMariaDB(workDir.path);
  await db.sql('CREATE DATABASE app; CREATE DATABASE copy');
  await db.sql(
    `CREATE TABLE ${ident(TABLE)} (id bigint unsigned PRIMARY KEY, note text, \`up\tdated\` datetime(6), b blob, h int INVISIBLE DEFAULT 1);
     INSERT INTO ${ident(TABLE)} (id, note, \`up\tdated\`, b)
       SELECT seq, CONCAT('tab\\there\\nnl \\\\ back \\' quote ),( ', CHAR(0), ' ☃ ', seq),
              '2025-01-01 00:00:00' + INTERVAL seq MINUTE, UNHEX('00FF0A27') FROM seq_1_to_${ROWS};
     CREATE TABLE nokey (a text, b int);
     INSERT INTO nokey VALUES ('same', 1), ('same', 1), (NULL, NULL);
     CREATE TABLE textkey (code varchar(10) PRIMARY KEY, created_at timestamp NULL, updated_at datetime);
     INSERT INTO textkey VALUES ('b', '2020-01-01 00:00:00', '2021-06-01 12:00:00'), ('a', '2020-02-01 00:00:00', NULL);
     CREATE TABLE events (id int PRIMARY KEY, happened timestamp NULL, logged datetime);
     INSERT INTO events VALUES (1, '2024-03-01 10:00:00', '2030-01-01 00:00:00'), (2, '2024-03-01 09:00:00', NULL);
     CREATE TABLE ${ident(LONG)} (id smallint PRIMARY KEY);
     INSERT INTO ${ident(LONG)} VALUES (3), (-2);
     CREATE TABLE empty (id int PRIMARY KEY, at datetime);
     CREATE TABLE versioned (id int PRIMARY KEY, v int) WITH SYSTEM VERSIONING;
     INSERT INTO versioned VALUES (1, 1), (2, 1);
     UPDATE versioned SET v = 2 WHERE id = 1;`,
    'app',
  );
  repository = await Repository.init(openStorage(`file://${workDir.path}/repo`), Buffer.from('stats'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const dump = await source('app').dump();
  snapshot = await backupStreams(repository, dump.streams, {
    type: 'full',
    source: 'app',
    objects: dump.objects,
    skipped: dump.skipped,
  });
  const pipe = new PassThrough();
  const writing = restoreStream(repository, snapshot, pipe, 'app.sql');
  await source('copy').restore(pipe, { database: 'copy', mode: 'replace' });
  await writing;
});

after(async () => {
  await db?.stop();
  workDir.remove();
});

describe('a MariaDB backup records per table', () => {
  test('a checksum, the integer key range and the newest timestamp, hostile names included', () => {
    const objects = snapshot.objects ?? [];
    assert.deepEqual(
      objects.map((o) => o.name).sort(),
      [TABLE, 'empty', 'events', LONG, 'nokey', 'textkey', 'versioned'].sort(),
    );
    assert.equal(named(objects, 'versioned')?.records, 3, 'history rows are dumped, and counted');
    for (const o of objects) assert.match(o.checksum ?? '', /^[0-9a-f]{32}$/, o.name);
    assert.equal(named(objects, TABLE)?.records, ROWS);
    assert.deepEqual(named(objects, TABLE)?.key, { column: 'id', min: '1', max: String(ROWS) });
    assert.deepEqual(named(objects, TABLE)?.newest, { column: 'up\tdated', value: '2025-01-01 03:20:00.000000' });
    assert.deepEqual(named(objects, LONG)?.key, { column: 'id', min: '-2', max: '3' });
    assert.equal(named(objects, 'textkey')?.key, undefined, 'no range of a text key');
    assert.deepEqual(named(objects, 'textkey')?.newest, { column: 'updated_at', value: '2021-06-01 12:00:00' });
    assert.equal(named(objects, 'events')?.newest?.column, 'happened', 'the column the policy names');
    assert.equal(named(objects, 'nokey')?.key, undefined);
    assert.deepEqual(named(objects, 'empty'), { name: 'empty', records: 0, checksum: '0'.repeat(32) });
  });
});

describe('tableStats', () => {
  test('of the restored copy, with checksums, equals what the backup recorded', async () => {
    const comparison = compareTables(
      snapshot.objects ?? [],
      await source('copy').tableStats('copy', { checksums: true, timestampColumns }),
    );
    assert.ok(comparison.ok, describeDifferences(comparison));
    assert.ok(comparison.tables.every((t) => t.checksumEqual === true));
  });

  test('one value changed in the copy: the checksum differs for exactly that table', async () => {
    await db.sql(`UPDATE ${ident(TABLE)} SET note = CONCAT(note, 'x') WHERE id = 7`, 'copy');
    const comparison = compareTables(
      snapshot.objects ?? [],
      await source('copy').tableStats('copy', { checksums: true, timestampColumns }),
    );
    assert.deepEqual(
      comparison.tables.filter((t) => !t.ok).map((t) => [t.name, t.checksumEqual, t.recordsDelta]),
      [[TABLE, false, 0]],
    );
  });

  test('of the live source, by SQL: equal to the backup, then N rows later N more and the key moved', async () => {
    const now = await source('app').tableStats('app', { checksums: false, timestampColumns });
    assert.ok(now.every((o) => o.checksum === undefined));
    const same = compareTables(snapshot.objects ?? [], now);
    assert.ok(same.ok, describeDifferences(same));
    assert.ok(same.tables.some((t) => t.keyEqual === true) && same.tables.some((t) => t.newestEqual === true));

    await db.sql(
      `INSERT INTO ${ident(TABLE)} (id, note, \`up\tdated\`) SELECT seq, 'later', NOW(6) FROM seq_1000_to_1006;
       INSERT INTO nokey VALUES ('x', 2);`,
      'app',
    );
    const later = compareTables(
      snapshot.objects ?? [],
      await source('app').tableStats('app', { checksums: false, timestampColumns }),
    );
    const grown = Object.fromEntries(
      later.tables.filter((t) => t.recordsDelta !== 0).map((t) => [t.name, t.recordsDelta]),
    );
    assert.deepEqual(grown, { [TABLE]: 7, nokey: 1 });
    const hostile = later.tables.find((t) => t.name === TABLE);
    assert.equal(hostile?.observed.key?.max, '1006');
    assert.equal(hostile?.keyEqual, false);
    assert.equal(hostile?.newestEqual, false);
  });
});
