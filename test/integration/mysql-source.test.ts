// The MySQL/MariaDB source against a real MariaDB server and the repository engine: consistent dumps
// while the application writes (R-BACKUP), restores into a new or replaced database with post-restore SQL
// (R-RESTORE), record counts and checksums to compare (R-VERIFY), and failures that name the source and
// write no snapshot.
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCode, type TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { NOT_TRANSACTIONAL } from '../../src/sources/mysql/dump.ts';
import { MySQLSource, type MySQLSourceOptions } from '../../src/sources/mysql/mysql.ts';
import type { DatabaseRestoreOptions, DatabaseRestoreResult, ObjectCount } from '../../src/sources/source.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { freePort } from '../harness/ports.ts';
import { waitUntil } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('mysql-source');
let db: MariaDBServer;
let repository: Repository;
let shop: MySQLSource;
const EVENTS = 1_000_000;
const CUSTOMERS = 1000;

// Several InnoDB tables with awkward types and values, a 1M-row table, an empty table, a MyISAM table, a
// view, a procedure, a trigger that keeps a running total of `orders`, and an event.
const schema = String.raw`
SET NAMES utf8mb4;
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE customers (
  id INT PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  email VARCHAR(200) NOT NULL,
  balance DECIMAL(12,2) NOT NULL,
  status ENUM('active','paused','closed') NOT NULL,
  profile JSON,
  avatar BLOB,
  created DATETIME(6) NOT NULL
) ENGINE=InnoDB;
INSERT INTO customers
  SELECT seq, CONCAT('Kunde ', seq, ' – O''Brien (', seq, '),\n"ß" \\ 😀;'), CONCAT('c', seq, '@example.com'),
    seq * 1.25 - 300, ELT(1 + seq % 3, 'active', 'paused', 'closed'),
    IF(seq % 7 = 0, NULL, JSON_OBJECT('tier', seq % 5, 'tags', JSON_ARRAY('a', 'b''c', '(x),(y)'))),
    IF(seq % 11 = 0, NULL, UNHEX(CONCAT(MD5(seq), '00275C0A0D1A22282C29'))),
    '2024-02-29 12:34:56.789012' + INTERVAL seq MINUTE
  FROM seq_1_to_${CUSTOMERS};
CREATE TABLE orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  total DECIMAL(12,2) NOT NULL,
  note TEXT,
  placed DATETIME NOT NULL
) ENGINE=InnoDB;
CREATE TABLE order_totals (id INT PRIMARY KEY, orders BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO order_totals VALUES (1, 0);
CREATE TRIGGER orders_total AFTER INSERT ON orders FOR EACH ROW UPDATE order_totals SET orders = orders + 1 WHERE id = 1;
CREATE TABLE events (
  id INT PRIMARY KEY,
  customer_id INT NOT NULL,
  kind ENUM('view','click','buy','refund') NOT NULL,
  payload CHAR(32) NOT NULL,
  at DATETIME NOT NULL
) ENGINE=InnoDB;
INSERT INTO events
  SELECT seq, seq % ${CUSTOMERS} + 1, ELT(1 + seq % 4, 'view', 'click', 'buy', 'refund'), MD5(seq),
    '2024-01-01' + INTERVAL seq SECOND
  FROM seq_1_to_${EVENTS};
CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=MyISAM;
INSERT INTO legacy VALUES (1, 'x'), (2, 'y');
CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE status = 'active';
DELIMITER //
CREATE PROCEDURE customer_orders(IN c INT)
BEGIN
INSERT INTO empty_table VALUES (-1);
DELETE FROM empty_table WHERE id = -1;
SELECT COUNT(*) FROM orders WHERE customer_id = c;
END//
DELIMITER ;
CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM events WHERE at < '2000-01-01';
`;

const options = (overrides: Partial<MySQLSourceOptions> = {}): MySQLSourceOptions => ({
  host: db.host,
  port: db.port,
  user: db.user,
  password: db.password,
  databases: ['shop'],
  ...overrides,
});

before(async () => {
  db = await startMariaDB(workDir.path);
  await db.sql(schema);
  repository = await Repository.init(openStorage(`file://${workDir.path}/repo`), Buffer.from('mysql source test'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  shop = new MySQLSource(options());
});

after(async () => {
  await db?.stop();
  workDir.remove();
});

async function scalar(query: string, database?: string): Promise<string> {
  return (await db.sql(query, database)).trim();
}

const byName = (objects: ObjectCount[]) => Object.fromEntries(objects.map((o) => [o.name, o.records]));

/** Per table: row count and a 128-bit XOR of row digests (every column QUOTE()d, so NULL stays apart from text). */
async function checksums(database: string): Promise<Record<string, string>> {
  const columns = await db.sql(
    `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS JOIN information_schema.TABLES USING (TABLE_SCHEMA, TABLE_NAME)
     WHERE TABLE_SCHEMA = '${database}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME, ORDINAL_POSITION`,
  );
  const tables = new Map<string, string[]>();
  for (const line of columns.trim().split('\n')) {
    const [table, column] = line.split('\t') as [string, string];
    tables.set(table, [...(tables.get(table) ?? []), column]);
  }
  const queries = [...tables].map(([table, cols]) => {
    const row = `CONCAT_WS('|', ${cols.map((c) => `QUOTE(\`${c}\`)`).join(', ')})`;
    return `SELECT '${table}', COUNT(*), BIT_XOR(CAST(CONV(LEFT(MD5(r), 16), 16, 10) AS UNSIGNED)),
      BIT_XOR(CAST(CONV(RIGHT(MD5(r), 16), 16, 10) AS UNSIGNED)) FROM (SELECT ${row} AS r FROM \`${database}\`.\`${table}\`) x`;
  });
  const result = await db.sql(`${queries.join(' UNION ALL ')};`);
  return Object.fromEntries(
    result
      .trim()
      .split('\n')
      .map((line) => {
        const [table, ...rest] = line.split('\t');
        return [table, rest.join(':')];
      }),
  );
}

/** Routines, triggers, events and views of a database, by kind. */
async function schemaObjects(database: string): Promise<string> {
  return db.sql(
    `SELECT 'routine', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '${database}'
     UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${database}'
     UNION ALL SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '${database}'
     UNION ALL SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '${database}'
     ORDER BY 1, 2`,
  );
}

/** Streams one database of a snapshot out of the repository into `restore`, as the agent does. */
async function restoreFrom(
  snapshot: Snapshot,
  stream: string,
  restoreOptions: DatabaseRestoreOptions,
  source: MySQLSource = shop,
): Promise<DatabaseRestoreResult> {
  const pipe = new PassThrough();
  const feeding = restoreStream(repository, snapshot, pipe, stream);
  feeding.catch((error: Error) => pipe.destroy(error));
  try {
    const result = await source.restore(pipe, restoreOptions);
    await feeding;
    return result;
  } catch (error) {
    pipe.destroy();
    throw error;
  }
}

/** Inserts orders in small autocommitted batches from another connection until stopped. */
function startWriter() {
  let stopping = false;
  const state = { batches: 0 };
  const running = (async () => {
    while (!stopping) {
      const rows = Array.from(
        { length: 20 },
        (_, i) => `(${1 + ((state.batches * 20 + i) % CUSTOMERS)}, ${i}.99, 'it''s (${i}), ok', NOW())`,
      );
      await db.sql(`INSERT INTO orders (customer_id, total, note, placed) VALUES ${rows.join(', ')};`, 'shop');
      state.batches++;
    }
  })();
  return {
    state,
    async stop() {
      stopping = true;
      await running;
    },
  };
}

async function snapshotCount(): Promise<number> {
  return (await (await Repository.reopen(repository)).snapshots()).length;
}

describe('MySQL source', () => {
  let duringWrites: { snapshot: Snapshot; objects: ObjectCount[] };
  let quiet: Snapshot;
  let quietObjects: ObjectCount[];

  test('description names user, host, port and databases, never the password', () => {
    assert.equal(shop.description, `mysql://root@127.0.0.1:${db.port}/shop`);
    assert.equal(new MySQLSource(options({ databases: 'all' })).description, `mysql://root@127.0.0.1:${db.port}/*`);
    assert.ok(!shop.description.includes(db.password));
  });

  test('a dump taken while the application writes is consistent: counts equal what restores, the live table moved on', async () => {
    await shop.check();
    const writer = startWriter();
    try {
      await waitUntil('writer', async () => writer.state.batches >= 3, { timeoutMs: 30_000 });
      const dump = await shop.dump();
      assert.deepEqual(
        dump.streams.map((s) => s.name),
        ['shop.sql'],
      );
      const batchesBefore = writer.state.batches;
      const started = Date.now();
      const snapshot = await backupStreams(repository, dump.streams, { type: 'full', source: shop.description });
      const batchesDuring = writer.state.batches - batchesBefore;
      console.log(
        `backup of ${EVENTS + CUSTOMERS} rows: ${Date.now() - started} ms, ${batchesDuring} insert batches meanwhile`,
      );
      assert.ok(batchesDuring > 0, 'the writer inserted while the dump ran');
      assert.equal(snapshot.source, shop.description);
      duringWrites = { snapshot, objects: dump.objects() };
      const reported = byName(dump.objects());
      assert.deepEqual(Object.keys(reported), [
        'customers',
        'empty_table',
        'events',
        'legacy',
        'order_totals',
        'orders',
      ]);
      assert.equal(reported.events, EVENTS);
      assert.equal(reported.customers, CUSTOMERS);
      assert.equal(reported.empty_table, 0);
      assert.equal(reported.legacy, 2);
      assert.equal(reported.order_totals, 1);
      assert.ok((reported.orders ?? 0) >= 60);
      assert.deepEqual(dump.skipped(), [{ path: 'legacy', reason: NOT_TRANSACTIONAL }]);

      // The live table moves on while the snapshot stays put.
      await waitUntil(
        'more orders',
        async () => Number(await scalar('SELECT COUNT(*) FROM orders', 'shop')) > (reported.orders ?? 0),
        {
          timeoutMs: 30_000,
        },
      );
    } finally {
      await writer.stop();
    }

    const started = Date.now();
    const restored = await restoreFrom(duringWrites.snapshot, 'shop.sql', { database: 'shop_at_backup', mode: 'new' });
    console.log(`restore of ${EVENTS + CUSTOMERS} rows: ${Date.now() - started} ms`);
    assert.deepEqual(byName(restored.objects), byName(duringWrites.objects));
    // The trigger-kept total was dumped in the same snapshot as the rows it counts.
    assert.equal(
      await scalar('SELECT orders FROM order_totals', 'shop_at_backup'),
      String(byName(duringWrites.objects).orders),
    );
  });

  test('a restore into a new database has the same counts, checksums, routines, triggers, events and views', async () => {
    const dump = await shop.dump();
    quiet = await backupStreams(repository, dump.streams, { type: 'full', source: shop.description });
    quietObjects = dump.objects();
    const restored = await restoreFrom(quiet, 'shop.sql', { database: 'shop copy', mode: 'new' });
    assert.deepEqual(byName(restored.objects), byName(quietObjects));
    const live = await checksums('shop');
    assert.deepEqual(await checksums('shop copy'), live);
    assert.deepEqual(
      byName(restored.objects),
      Object.fromEntries(Object.entries(live).map(([table, sum]) => [table, Number(sum.split(':')[0])])),
    );
    assert.equal(
      await schemaObjects('shop copy'),
      'event\tnightly_cleanup\nroutine\tcustomer_orders\ntrigger\torders_total\nview\tactive_customers\n',
    );
    assert.equal(await schemaObjects('shop copy'), await schemaObjects('shop'));
    // The view and the procedure work on the copy's own tables, not on the original database's.
    const view = await scalar(
      "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop copy' AND TABLE_NAME = 'active_customers'",
    );
    assert.ok(!view.includes('`shop`'), view);
    await db.sql('DELETE FROM orders WHERE customer_id = 1', 'shop copy');
    assert.equal(await scalar('CALL customer_orders(1)', 'shop copy'), '0');
    assert.notEqual(await scalar('CALL customer_orders(1)', 'shop'), '0');
    assert.equal(await scalar('SELECT COUNT(*) FROM active_customers', 'shop copy'), String(Math.floor(CUSTOMERS / 3)));
  });

  test('a restore into a database that is not empty is refused without replace, and changes nothing', async () => {
    const before = await checksums('shop_at_backup');
    await assert.rejects(
      restoreFrom(quiet, 'shop.sql', { database: 'shop_at_backup', mode: 'new' }),
      (error: TidemarkError) => {
        assert.equal(error.code, 'InvalidArgument');
        assert.match(error.message, /shop_at_backup.*not empty.*mode replace/);
        return true;
      },
    );
    assert.deepEqual(await checksums('shop_at_backup'), before);
  });

  test('replace restores over a database, then runs the post-restore SQL', async () => {
    const restored = await restoreFrom(quiet, 'shop.sql', {
      database: 'shop_at_backup',
      mode: 'replace',
      postRestoreSQL:
        "UPDATE customers SET email = CONCAT('customer', id, '@example.invalid'), name = CONCAT('Customer ', id);",
    });
    const live = await checksums('shop');
    const copy = await checksums('shop_at_backup');
    assert.deepEqual(byName(restored.objects), byName(quietObjects));
    assert.equal(copy.events, live.events);
    assert.equal(copy.orders, live.orders);
    assert.notEqual(copy.customers, live.customers);
    assert.equal(
      await scalar("SELECT COUNT(*) FROM customers WHERE email NOT LIKE '%@example.invalid'", 'shop_at_backup'),
      '0',
    );
    assert.equal(await scalar('SELECT COUNT(*) FROM customers', 'shop_at_backup'), String(CUSTOMERS));
  });

  test('post-restore SQL with a script role runs as that user; what it holds no grant for fails and the restore is undone', async () => {
    const role = { user: 'anonymiser', password: 'anonymiser-secret-7' };
    await db.sql(
      `CREATE USER '${role.user}'@'%' IDENTIFIED BY '${role.password}'; GRANT SELECT, UPDATE ON \`shop\\_anon%\`.* TO '${role.user}'@'%';`,
    );
    await restoreFrom(quiet, 'shop.sql', {
      database: 'shop_anon',
      mode: 'new',
      postRestoreSQL: 'UPDATE customers SET name = CURRENT_USER();',
      scriptRole: role,
    });
    assert.match(await scalar('SELECT DISTINCT name FROM customers', 'shop_anon'), /^anonymiser@/);
    await assert.rejects(
      restoreFrom(quiet, 'shop.sql', {
        database: 'shop_anon2',
        mode: 'new',
        postRestoreSQL: "CREATE USER 'evil'@'%';",
        scriptRole: role,
      }),
      (error: TidemarkError) => /post-restore SQL as user anonymiser failed.*denied/s.test(error.message),
    );
    assert.equal(await scalar("SELECT COUNT(*) FROM mysql.user WHERE user = 'evil'"), '0');
    assert.equal(await scalar("SHOW DATABASES LIKE 'shop\\_anon2'"), '');
    await db.sql(`DROP DATABASE shop_anon; DROP USER '${role.user}'@'%';`); // the all-databases test lists what is left
  });

  test('a failed restore leaves no half-restored database', async () => {
    const exists = async (name: string) => (await scalar(`SHOW DATABASES LIKE '${name}'`)) === name;
    const statements = 'CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1),(2);\n';

    await assert.rejects(
      shop.restore(Readable.from([Buffer.from(`${statements}THIS IS NOT SQL;\n`)]), {
        database: 'broken',
        mode: 'new',
      }),
      (error: TidemarkError) => isCode(error, 'SourceUnavailable') && /broken.*ERROR 1064/.test(error.message),
    );
    assert.equal(await exists('broken'), false);

    // The stream fails part-way, after a statement without its delimiter: the client must not run it.
    async function* cut() {
      yield Buffer.from(`${statements}INSERT INTO t VALUES (3),(4)`);
      await sleep(200);
      throw new Error('chunk 7 is damaged');
    }
    await db.sql('CREATE DATABASE cut_target CHARACTER SET latin1');
    await assert.rejects(
      shop.restore(Readable.from(cut()), { database: 'cut_target', mode: 'new' }),
      /chunk 7 is damaged/,
    );
    assert.equal(await scalar('SHOW TABLES FROM cut_target'), '');
    assert.equal(
      await scalar(
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'cut_target'",
      ),
      'latin1',
    );

    await assert.rejects(
      shop.restore(Readable.from([Buffer.from(statements)]), {
        database: 'post_fails',
        mode: 'new',
        postRestoreSQL: 'UPDATE no_such_table SET x = 1;',
      }),
      (error: TidemarkError) =>
        isCode(error, 'InvalidArgument') && /post-restore SQL failed.*no_such_table/.test(error.message),
    );
    assert.equal(await exists('post_fails'), false);
  });

  const failures: Record<string, () => Promise<Partial<MySQLSourceOptions>>> = {
    'wrong password': async () => ({ password: 'not-the-password' }),
    'unreachable host (closed port)': async () => ({ port: await freePort() }),
    'missing database': async () => ({ databases: ['shop', 'no_such_db'] }),
  };
  for (const [what, overrides] of Object.entries(failures))
    test(`${what}: check fails naming the source, and a backup writes no snapshot`, async () => {
      const source = new MySQLSource(options(await overrides()));
      const named = (error: TidemarkError) => {
        assert.equal(error.code, 'SourceUnavailable');
        assert.ok(error.message.includes(source.description), error.message);
        assert.ok(!error.message.includes(db.password));
        return true;
      };
      await assert.rejects(source.check(), named);
      const before = await snapshotCount();
      await assert.rejects(
        async () =>
          backupStreams(repository, (await source.dump()).streams, { type: 'full', source: source.description }),
        named,
      );
      assert.equal(await snapshotCount(), before);
    });

  test('a dump that fails part-way throws from its stream, so no snapshot is written', async () => {
    await db.sql('CREATE DATABASE doomed; CREATE TABLE doomed.t (id INT); INSERT INTO doomed.t VALUES (1);');
    const source = new MySQLSource(options({ databases: ['doomed'] }));
    await source.check();
    const dump = await source.dump();
    await db.sql('DROP DATABASE doomed');
    const before = await snapshotCount();
    await assert.rejects(
      backupStreams(repository, dump.streams, { type: 'full', source: source.description }),
      (error: TidemarkError) => isCode(error, 'SourceUnavailable') && /doomed.*Unknown database/.test(error.message),
    );
    assert.equal(await snapshotCount(), before);
  });

  test('all databases: one stream each plus users and grants, objects named db.table, server schemas left out', async () => {
    await db.sql(
      'CREATE DATABASE crm; CREATE TABLE crm.contacts (id INT PRIMARY KEY); INSERT INTO crm.contacts VALUES (1), (2), (3);',
    );
    const source = new MySQLSource(options({ databases: 'all' }));
    await source.check();
    const dump = await source.dump();
    const names = dump.streams.map((s) => s.name);
    assert.deepEqual(names.sort(), [
      'crm.sql',
      'cut_target.sql',
      'globals.sql',
      'shop copy.sql',
      'shop.sql',
      'shop_at_backup.sql',
    ]);
    const read = async (name: string) => {
      const chunks: Buffer[] = [];
      for await (const chunk of dump.streams.find((s) => s.name === name)?.data ?? []) chunks.push(chunk);
      return Buffer.concat(chunks).toString();
    };
    assert.match(await read('globals.sql'), /CREATE USER `root`@`127\.0\.0\.1`/);
    const crm = await read('crm.sql');
    assert.doesNotMatch(crm, /^(CREATE DATABASE|USE )/m);
    assert.deepEqual(byName(dump.objects()), { 'crm.contacts': 3 });

    // A stream abandoned part-way stops its mariadb-dump.
    const shopStream = dump.streams.find((s) => s.name === 'shop.sql')?.data as AsyncGenerator<Buffer>;
    await shopStream.next();
    await shopStream.return(undefined);
    await waitUntil(
      'mariadb-dump to go away',
      async () => !(await db.sql('SHOW FULL PROCESSLIST')).includes('SQL_NO_CACHE'),
      { timeoutMs: 10_000 },
    );
  });
});
