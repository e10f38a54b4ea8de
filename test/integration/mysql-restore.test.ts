// MariaDB restores keep their promise (issue 9): `new` means empty, every restore goes through a scratch
// database swapped into place, so a failed, stopped or killed restore leaves the target exactly as it
// was; the counter survives content a tenant controls; counts are compared; mariadb's own error reaches
// the user.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runRestore } from '../../src/agent/run-restore.ts';
import type { TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { MySQLSource } from '../../src/sources/mysql/mysql.ts';
import type { ObjectCount } from '../../src/sources/source.ts';
import { compareTables, describeDifferences } from '../../src/sources/verify.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { waitUntil } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('mysql-restore');
let db: MariaDBServer;
let repository: Repository;
const ROWS = 200_000;
const PASSPHRASE = 'mysql restore test';

const schema = String.raw`
CREATE DATABASE app CHARACTER SET utf8mb4;
USE app;
CREATE TABLE big (id INT PRIMARY KEY, v CHAR(40) NOT NULL) ENGINE=InnoDB;
INSERT INTO big SELECT seq, SHA1(seq) FROM seq_1_to_${ROWS};
CREATE TABLE secrets (id INT PRIMARY KEY, hidden INT INVISIBLE DEFAULT 7, note VARCHAR(20)) ENGINE=InnoDB;
INSERT INTO secrets (id, note) SELECT seq, CONCAT('n', seq) FROM seq_1_to_990;
CREATE TABLE ${'`odd\nname -- x`'} (id INT) COMMENT 'it''s\n-- INSERT INTO ${'`big`'} VALUES (1),(2);\n*/ (3),(4)';
INSERT INTO ${'`odd\nname -- x`'} VALUES (1), (2), (3);
CREATE VIEW small AS SELECT id FROM big WHERE id < 10;
CREATE TRIGGER secrets_note BEFORE INSERT ON secrets FOR EACH ROW SET NEW.note = UPPER(NEW.note);
CREATE PROCEDURE p() SELECT 1;
CREATE FUNCTION f() RETURNS INT RETURN 1;
CREATE SEQUENCE counter;
CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM big WHERE id < 0;
`;

before(async () => {
  db = await startMariaDB(workDir.path);
  await db.sql(schema);
  repository = await Repository.init(openStorage(`file://${workDir.path}/repo`), Buffer.from(PASSPHRASE), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
});

after(async () => {
  await db?.stop();
  workDir.remove();
});

const source = (database: string) =>
  new MySQLSource({ host: db.host, port: db.port, user: db.user, password: db.password, databases: [database] });

async function dumpOf(database: string): Promise<{ sql: Buffer; objects: ObjectCount[] }> {
  const dump = await source(database).dump();
  const chunks: Buffer[] = [];
  for (const stream of dump.streams) for await (const chunk of stream.data) chunks.push(chunk as Buffer);
  return { sql: Buffer.concat(chunks), objects: dump.objects() };
}

/** Everything a database holds: objects by kind and, per table, row count and an order-independent digest of every row (INVISIBLE columns included). */
async function fingerprint(database: string): Promise<string> {
  const objects = await db.sql(
    `SELECT 'table', TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${database}'
     UNION ALL SELECT 'routine', ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '${database}'
     UNION ALL SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${database}'
     UNION ALL SELECT 'event', EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '${database}'
     UNION ALL SELECT 'database', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${database}'
     ORDER BY 1, 2`,
  );
  const tables = (
    await db.sql(
      `SELECT TABLE_NAME, GROUP_CONCAT(CONCAT('QUOTE(\`', COLUMN_NAME, '\`)') ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS
       JOIN information_schema.TABLES USING (TABLE_SCHEMA, TABLE_NAME) WHERE TABLE_SCHEMA = '${database}' AND TABLE_TYPE = 'BASE TABLE'
       GROUP BY TABLE_NAME ORDER BY TABLE_NAME`,
    )
  )
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t') as [string, string]);
  const sums = [];
  for (const [table, columns] of tables) {
    const name = table.replaceAll('\\n', '\n');
    sums.push(
      await db.sql(
        `SELECT COUNT(*), BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS('|', ${columns})), 16), 16, 10) AS UNSIGNED)) FROM \`${database}\`.\`${name}\``,
      ),
    );
  }
  return objects + sums.join('');
}

async function scratchDatabases(): Promise<string> {
  return (await db.sql("SHOW DATABASES LIKE 'tidemark\\_restore\\_%'")).trim();
}

describe('MariaDB restores', () => {
  let app: { sql: Buffer; objects: ObjectCount[] };
  before(async () => {
    app = await dumpOf('app');
    await source('app').restore(Readable.from([app.sql]), { database: 'app_copy', mode: 'replace' });
  });

  /** A snapshot of the app dump recording `objects` as its counts. */
  const snapshotOf = (objects: ObjectCount[]) =>
    backupStreams(repository, [{ name: 'app.sql', data: Readable.from([app.sql]) }], {
      type: 'full',
      source: 'mysql://root@test/app',
      objects,
    });
  const restoreInto = (snapshot: Snapshot, database: string, mode: 'new' | 'replace') =>
    runRestore({
      repository,
      snapshot,
      targetUrl: `mysql://root@${db.host}:${db.port}/${encodeURIComponent(database)}`,
      mode,
      env: { MYSQL_PWD: db.password },
    });

  test('the backup counts every table, INVISIBLE columns and odd names alike; counts compare on restore', async () => {
    await db.sql('DROP DATABASE app_copy');
    const counts = Object.fromEntries(app.objects.map((o) => [o.name, o.records]));
    assert.deepEqual(counts, { big: ROWS, 'odd\nname -- x': 3, secrets: 990 });
    const outcome = await restoreInto(await snapshotOf(app.objects), 'app_copy', 'new');
    assert.deepEqual(outcome.warnings, []);
    const byName = (objects: ObjectCount[]) => Object.fromEntries(objects.map((o) => [o.name, o.records]));
    assert.deepEqual(byName(outcome.restored), byName(app.objects));
    assert.equal(await fingerprint('app_copy'), (await fingerprint('app')).replaceAll('app', 'app_copy'));
    const stats = await source('app_copy').tableStats('app_copy', { checksums: true });
    const comparison = compareTables(app.objects, stats);
    assert.ok(comparison.ok, `checksums of the copy equal the backup's: ${describeDifferences(comparison)}`);
  });

  test('a count that differs from the backup is reported, never a reason to refuse a good dump', async () => {
    const forged = app.objects.map((o) => (o.name === 'secrets' ? { ...o, records: 0 } : o));
    const outcome = await restoreInto(await snapshotOf(forged), 'app_copy', 'replace');
    assert.deepEqual(outcome.warnings, [
      "restored row counts differ from the backup's: secrets: 990 restored, 0 in the backup",
    ]);
  });

  for (const [kind, create] of [
    ['view', 'CREATE VIEW v AS SELECT 1 AS one'],
    ['procedure', 'CREATE PROCEDURE proc() SELECT 1'],
    ['function', 'CREATE FUNCTION fn() RETURNS INT RETURN 1'],
    ['event', 'CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1'],
    ['sequence', 'CREATE SEQUENCE sq'],
  ] as const)
    test(`mode new refuses a database holding only a ${kind}, naming it, and changes nothing`, async () => {
      const database = `holds_${kind}`;
      await db.sql(`CREATE DATABASE ${database}; USE ${database}; ${create};`);
      const before = await fingerprint(database);
      await assert.rejects(
        source('app').restore(Readable.from([app.sql]), { database, mode: 'new' }),
        (error: TidemarkError) => {
          assert.equal(error.code, 'InvalidArgument');
          assert.match(error.message, new RegExp(`not empty, it holds ${kind} "`));
          return true;
        },
      );
      assert.equal(await fingerprint(database), before);
    });

  test('through the agent path a refused restore fails at once, naming what the target holds', async () => {
    await assert.rejects(restoreInto(await snapshotOf(app.objects), 'app_copy', 'new'), (error: TidemarkError) => {
      assert.equal(error.code, 'InvalidArgument');
      assert.match(
        error.message,
        /app_copy: the database is not empty, it holds event "e", function "f", .*table "big"/,
      );
      return true;
    });
  });

  test('a replace whose dump fails part-way leaves the target exactly as it was, with mariadb’s own error', async () => {
    const before = await fingerprint('app_copy');
    const broken = Buffer.concat([app.sql.subarray(0, app.sql.length / 2), Buffer.from("');\nTHIS IS NOT SQL;\n")]);
    const error = await source('app')
      .restore(Readable.from([broken]), { database: 'app_copy', mode: 'replace' })
      .then(
        () => assert.fail('the restore succeeded'),
        (failure: TidemarkError) => failure,
      );
    assert.equal(await fingerprint('app_copy'), before);
    assert.equal(await scratchDatabases(), '');
    assert.match(
      error.message,
      /app_copy: ERROR 1064 \(42000\) at line \d+: You have an error.*\(target left unchanged\)$/,
    );
  });

  test('through the agent path and the CLI the error is mariadb’s, not a closed stream', async () => {
    const snapshot = await backupStreams(
      repository,
      [
        {
          name: 'app.sql',
          data: Readable.from([Buffer.concat([Buffer.from('INSERT INTO no_such_table VALUES (1);\n'), app.sql])]),
        },
      ],
      { type: 'full', source: 'mysql://root@test/app' },
    );
    await assert.rejects(
      runRestore({
        repository,
        snapshot,
        targetUrl: `mysql://root@${db.host}:${db.port}/agent_target`,
        mode: 'new',
        env: { MYSQL_PWD: db.password },
      }),
      (error: TidemarkError) => {
        assert.match(error.message, /ERROR 1146 \(42S02\) at line \d+: Table '.*no_such_table' doesn't exist/);
        assert.doesNotMatch(error.message, /output was closed|aborted/);
        return true;
      },
    );
    assert.equal(await db.sql("SHOW DATABASES LIKE 'agent\\_target'"), '');

    // The CLI prints the same line.
    const cli = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'restore',
        '--repo',
        `file://${workDir.path}/repo`,
        '--snapshot',
        snapshot.id,
        '--target',
        `mysql://root@${db.host}:${db.port}/cli_target`,
      ],
      {
        env: { ...process.env, MYSQL_PWD: db.password, TIDEMARK_REPO_KEY: PASSPHRASE },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    cli.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const [code] = await once(cli, 'exit');
    assert.notEqual(code, 0);
    assert.match(stderr, /ERROR 1146 \(42S02\) at line \d+: Table '.*no_such_table' doesn't exist/);

    // And the agent's result, which the operator puts in the RestoreRequest's status and Event.
    const resultFile = join(workDir.path, 'agent-result.json');
    const agent = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'agent', 'restore'], {
      env: {
        ...process.env,
        MYSQL_PWD: db.password,
        TIDEMARK_REPO: `file://${workDir.path}/repo`,
        TIDEMARK_REPO_KEY: PASSPHRASE,
        TIDEMARK_SNAPSHOT: snapshot.id,
        TIDEMARK_TARGET: `mysql://root@${db.host}:${db.port}/agent_target`,
        TIDEMARK_RESTORE_MODE: 'new',
        TIDEMARK_RESULT_FILE: resultFile,
        TIDEMARK_LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    await once(agent, 'exit');
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as { ok: boolean; error?: { message: string } };
    assert.equal(result.ok, false);
    assert.match(
      result.error?.message ?? '',
      /ERROR 1146 \(42S02\) at line \d+: Table '.*no_such_table' doesn't exist/,
    );
  });

  test('nobody sees a restore half-done: the target keeps its old content until the swap', async () => {
    const before = await fingerprint('app_copy');
    await db.sql('UPDATE app_copy.big SET v = "changed" WHERE id = 1');
    const changed = await fingerprint('app_copy');
    assert.notEqual(changed, before);
    const restoring = source('app').restore(Readable.from([app.sql]), {
      database: 'app_copy',
      mode: 'replace',
      postRestoreSQL: 'DO SLEEP(3);',
    });
    await waitUntil('the scratch database', async () => (await scratchDatabases()) !== '', { timeoutMs: 30_000 });
    await sleep(500);
    assert.equal(await fingerprint('app_copy'), changed);
    await restoring;
    assert.equal(await fingerprint('app_copy'), before);
  });

  let kills = 0;
  /** `tidemark restore` of the app backup as its own process, killed with `signal` at `when`. */
  async function killRestore(options: { mode: 'new' | 'replace'; signal: NodeJS.Signals; when: 'early' | 'late' }) {
    const snapshot = await snapshotOf(app.objects);
    const marker = `kill test ${++kills}`;
    const sleepFile = join(workDir.path, 'sleep.sql');
    writeFileSync(sleepFile, `SELECT SLEEP(20), '${marker}';`);
    const target = options.mode === 'new' ? 'kill_new' : 'app_copy';
    const args = [
      'restore',
      '--repo',
      `file://${workDir.path}/repo`,
      '--snapshot',
      snapshot.id,
      '--mode',
      options.mode,
    ];
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        ...args,
        '--target',
        `mysql://root@${db.host}:${db.port}/${target}`,
        '--post-restore-sql',
        sleepFile,
      ],
      {
        env: { ...process.env, MYSQL_PWD: db.password, TIDEMARK_REPO_KEY: PASSPHRASE, TIDEMARK_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const exited = once(child, 'exit');
    if (options.when === 'early')
      await waitUntil('the replay', async () => (await scratchDatabases()) !== '', {
        timeoutMs: 30_000,
        intervalMs: 20,
      });
    else
      await waitUntil('the post-restore SQL', async () => (await db.sql('SHOW PROCESSLIST')).includes(marker), {
        timeoutMs: 60_000,
      });
    child.kill(options.signal);
    const [code] = await exited;
    return { code, stderr };
  }

  for (const mode of ['new', 'replace'] as const)
    for (const signal of ['SIGTERM', 'SIGKILL'] as const)
      for (const when of ['early', 'late'] as const)
        test(`a ${mode} restore killed with ${signal} ${when === 'early' ? 'while loading' : 'in its post-restore SQL'} leaves the target as it was; the next restore removes the scratch database`, async () => {
          const target = mode === 'new' ? 'kill_new' : 'app_copy';
          const before = mode === 'new' ? '' : await fingerprint(target);
          const ended = await killRestore({ mode, signal, when });
          if (signal === 'SIGTERM') {
            assert.equal(ended.code, 1, ended.stderr);
            assert.match(
              ended.stderr,
              new RegExp(`${target}: interrupted by SIGTERM \\(target left unchanged\\) \\(Interrupted\\)`),
            );
            assert.equal(await scratchDatabases(), '', 'SIGTERM drops the scratch database at once');
          }
          if (mode === 'new') assert.equal(await db.sql(`SHOW DATABASES LIKE '${target}'`), '');
          else assert.equal(await fingerprint(target), before);
          // A SIGKILL leaves the restore's client sessions to end on their own (their stdin closes); once the server
          // has seen them go, the next restore removes what was left, and says so.
          await waitUntil(
            'the killed restore’s sessions to end',
            async () =>
              (await db.sql(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tidemark\\_restore\\_%' AND NOT IS_FREE_LOCK(LEFT(SCHEMA_NAME, 29))",
              )) === '0\n',
            { timeoutMs: 30_000 },
          );
          const leftovers = (await scratchDatabases()).split('\n').filter(Boolean);
          const next = await source('app').restore(Readable.from(['CREATE TABLE t (id INT);']), {
            database: 'next_one',
            mode: 'replace',
          });
          assert.deepEqual(
            next.warnings,
            leftovers.map((name) => `dropped database "${name}" left by an interrupted restore`),
          );
          assert.equal(await scratchDatabases(), '');
        });

  test('only scratch databases whose restore and swap locks are both free are removed, nothing else', async () => {
    const holder = spawn(
      'mariadb',
      ['--no-defaults', '--protocol=TCP', `--host=${db.host}`, `--port=${db.port}`, '--user=root'],
      {
        env: { ...process.env, MYSQL_PWD: db.password },
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    const swapping = 'tidemark_restore_0123456789ab';
    holder.stdin.write(`DO GET_LOCK('${swapping}_swap', 0);\n`);
    await waitUntil(
      'the lock',
      async () => (await db.sql(`SELECT IS_USED_LOCK('${swapping}_swap') IS NOT NULL`)) === '1\n',
      {
        timeoutMs: 10_000,
      },
    );
    await db.sql(
      `CREATE DATABASE ${swapping}; CREATE DATABASE tidemark_restore_abcdefabcdef_replaced; CREATE DATABASE tidemark_restore_mine; CREATE DATABASE \`tidemark_restore_abcdefabcdef.x\`;`,
    );
    await source('app').restore(Readable.from(['CREATE TABLE t (id INT);']), { database: 'next_one', mode: 'replace' });
    assert.equal(await scratchDatabases(), `${swapping}\ntidemark_restore_abcdefabcdef.x\ntidemark_restore_mine`);
    holder.stdin.end();
    await once(holder, 'exit');
    await source('app').restore(Readable.from(['CREATE TABLE t (id INT);']), { database: 'next_one', mode: 'replace' });
    assert.equal(await scratchDatabases(), 'tidemark_restore_abcdefabcdef.x\ntidemark_restore_mine');
    await db.sql('DROP DATABASE tidemark_restore_mine; DROP DATABASE `tidemark_restore_abcdefabcdef.x`;');
  });

  test('a scratch database of a restore still running is not removed by another restore', async () => {
    const running = source('app').restore(Readable.from([app.sql]), {
      database: 'slow_one',
      mode: 'new',
      postRestoreSQL: 'DO SLEEP(4);',
    });
    await waitUntil('the scratch database', async () => (await scratchDatabases()) !== '', { timeoutMs: 30_000 });
    await source('app').restore(Readable.from(['CREATE TABLE t (id INT);']), { database: 'next_one', mode: 'replace' });
    assert.notEqual(await scratchDatabases(), '');
    await running;
    assert.equal(await db.sql('SELECT COUNT(*) FROM slow_one.big'), `${ROWS}\n`);
  });
});
