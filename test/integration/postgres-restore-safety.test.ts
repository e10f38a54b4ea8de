// Issue 9, PostgreSQL restores against a real PostgreSQL server: mode `new` means empty (finding 1),
// signals and killed restores leave the target as it was and no scratch database behind (finding 3 and
// the kill test), content a tenant controls cannot make a backup unrestorable (finding 5), and the
// database's own error reaches the user (finding 6). R-RESTORE, R-BACKUP, SPEC section 4 "Bad input".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runRestore } from '../../src/agent/run-restore.ts';
import { isCode, type TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { PostgresSource } from '../../src/sources/postgres/postgres.ts';
import type { DatabaseRestoreOptions, ObjectCount } from '../../src/sources/source.ts';
import { compareTables, describeDifferences } from '../../src/sources/verify.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('postgres-restore-safety');
const passphrase = 'correct horse battery staple';
const keyFile = join(workDir.path, 'repo-key');
const repoUrl = `file://${workDir.path}/repo`;
const repoRoot = join(import.meta.dirname, '..', '..');
let pg: PostgresServer;
let repository: Repository;
/** A backup of `shop`: a few tables, a view, a sequence, a large object. */
let shopBackup: Snapshot;

const sourceFor = (database: string) =>
  new PostgresSource({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, databases: [database] });
const server = () => sourceFor('postgres');
/** Names and counts in name order (backups also record checksums and ranges: table-stats-postgres.test.ts). */
const byName = (counts: ObjectCount[]) =>
  counts
    .map(({ name, records }) => ({ name, records }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
const scratchDatabases = async () =>
  (await pg.psql("select datname from pg_database where datname like 'tidemark\\_restore\\_%' order by 1"))
    .split('\n')
    .filter(Boolean);
const databaseExists = async (name: string) =>
  (await pg.psql(`select count(*) from pg_database where datname = '${name}'`)).trim() === '1';

async function backupOf(database: string, objects?: ObjectCount[]): Promise<Snapshot> {
  const source = sourceFor(database);
  const dump = await source.dump();
  const snapshot = await backupStreams(repository, dump.streams, {
    type: 'full',
    source: source.description,
    objects: objects ?? dump.objects,
    skipped: dump.skipped,
  });
  return snapshot;
}

/** Streams one dump out of the repository into a restore, as the agent does. */
async function restoreFrom(snapshot: Snapshot, options: DatabaseRestoreOptions) {
  const pipe = new PassThrough();
  const writing = restoreStream(repository, snapshot, pipe);
  writing.catch(() => undefined); // when the restore is refused, the pipe is destroyed under the writer
  const result = await server().restore(pipe, options);
  await writing;
  return result;
}

/** Everything a user sees of a database: its schema (pg_dump) and a checksum of every table. */
async function fingerprint(database: string): Promise<{ schema: string; tables: Record<string, string> }> {
  const schema = await new Promise<string>((resolve, reject) => {
    const child = spawn('pg_dump', ['--schema-only', '--no-password', '-d', database], {
      env: { ...process.env, ...pg.env, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pg_dump of ${database}: ${code}`))));
  });
  // Every ordinary table outside the system schemas, named with newlines escaped (one line each).
  const sums = await pg.psql(
    `select format('select %L, md5(coalesce(string_agg(t::text, %L order by t::text), %L)) from %I.%I t',
                   replace(n.nspname || '.' || c.relname, E'\\n', '\\n'), ',', '', n.nspname, c.relname)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'
      order by n.nspname, c.relname
     \\gexec`,
    database,
  );
  const tables = Object.fromEntries(
    sums
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(/\|(?=[0-9a-f]{32}$)/)),
  );
  // \restrict keys are random per dump
  return { schema: schema.replace(/^\\(un)?restrict .*$/gm, ''), tables };
}

/** The `tidemark` CLI as a child process, as an operator or a Job runs it. */
function tidemark(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...pg.env, TIDEMARK_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exited };
}

const restoreArgs = (snapshot: Snapshot, database: string, mode: 'new' | 'replace', more: string[] = []) => [
  'restore',
  ...['--repo', repoUrl, '--key-file', keyFile, '--snapshot', snapshot.id],
  ...['--target', `postgresql://postgres@${pg.host}:${pg.port}/${database}`, '--mode', mode, ...more],
];

before(async () => {
  pg = await startPostgres(workDir.path);
  writeFileSync(keyFile, passphrase);
  repository = await Repository.init(openStorage(repoUrl), Buffer.from(passphrase), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  await pg.psql('create database shop');
  await pg.psql(
    `create schema app;
     create table app.customers (id serial primary key, email text not null);
     insert into app.customers (email) select 'c' || g || '@shop.example' from generate_series(1, 200) g;
     create table app.orders (id bigserial primary key, customer_id int references app.customers, total numeric);
     insert into app.orders (customer_id, total) select 1 + g % 200, g from generate_series(1, 5000) g;
     create view app.totals as select customer_id, sum(total) from app.orders group by 1;
     create table app.documents (id int primary key, content oid);
     insert into app.documents values (1, lo_from_bytea(0, 'kept'));`,
    'shop',
  );
  shopBackup = await backupOf('shop');
});

after(async () => {
  await pg?.stop();
  workDir.remove();
});

describe('mode new: emptiness means empty (finding 1)', () => {
  // One database per kind: each object alone must make the target non-empty.
  const kinds: Record<string, string> = {
    function: 'create function public.answer() returns int language sql as $$select 42$$',
    procedure: 'create procedure public.tidy() language sql as $$select 1$$',
    aggregate: 'create aggregate public.total(int) (sfunc = int4pl, stype = int)',
    type: "create type public.mood as enum ('ok', 'sad')",
    domain: 'create domain public.positive as int check (value > 0)',
    schema: 'create schema empty_but_mine',
    'large object': "select lo_from_bytea(0, 'a document nobody links to')",
    'low large object': 'select lo_create(42)', // lo_create chooses the OID: below FirstNormalObjectId
    sequence: 'create sequence public.invoice_no',
    extension: 'create extension pg_trgm',
    publication: 'create publication everything for all tables',
    'event trigger': `create function public.on_ddl() returns event_trigger language plpgsql as $$begin end$$;
                      create event trigger audit_ddl on ddl_command_start execute function public.on_ddl();
                      alter event trigger audit_ddl disable;`,
    'default acl': 'alter default privileges grant select on tables to public',
    operator: 'create operator public.=== (leftarg = int, rightarg = int, function = int4eq)',
    collation: "create collation public.bytes (locale = 'C')",
    'text search configuration': 'create text search configuration public.plain (copy = simple)',
    server: 'create foreign data wrapper dummy; create server elsewhere foreign data wrapper dummy',
    cast: 'create cast (circle as int) with inout',
    subscription: "create subscription elsewhere connection 'dbname=nowhere' publication p with (connect = false)",
  };

  for (const [kind, ddl] of Object.entries(kinds)) {
    test(`a database holding nothing but: ${kind}, is refused, naming it, and keeps it`, async () => {
      const database = `holds_${kind.replaceAll(' ', '_')}`;
      await pg.psql(`create database ${database}`);
      await pg.psql(ddl, database);
      const before = await fingerprint(database);
      const objects = await pg.psql(
        'select count(*) from pg_largeobject_metadata union all select count(*) from pg_proc where oid >= 16384',
        database,
      );
      await assert.rejects(restoreFrom(shopBackup, { database, mode: 'new' }), (error: TidemarkError) => {
        assert.ok(isCode(error, 'InvalidArgument'), error.message);
        assert.match(error.message, new RegExp(`database "${database}" on .* is not empty \\(it holds 1 `));
        assert.match(error.message, /restore into a new database or use mode replace/);
        return true;
      });
      assert.deepEqual(await fingerprint(database), before);
      assert.equal(
        await pg.psql(
          'select count(*) from pg_largeobject_metadata union all select count(*) from pg_proc where oid >= 16384',
          database,
        ),
        objects,
      );
      assert.deepEqual(await scratchDatabases(), []);
    });
  }

  test('the message lists what was found, several kinds at once', async () => {
    await pg.psql('create database holds_many');
    await pg.psql(
      `create function public.f() returns int language sql as $$select 1$$;
       create function public.g(x int) returns int language sql as $$select x$$;
       create type public.t as (a int); create schema s; select lo_create(4242);`,
      'holds_many',
    );
    await assert.rejects(
      restoreFrom(shopBackup, { database: 'holds_many', mode: 'new' }),
      /it holds 2 functions \(public\.f\(\), public\.g\(integer\)\), 1 large object \(4242\), 1 schema \(s\), 1 type \(public\.t\)\)/,
    );
  });

  test('an empty database, even one used before (a temporary table came and went), is restored into', async () => {
    await pg.psql('create database used_but_empty');
    await pg.psql('create temporary table scratchpad (a int); insert into scratchpad values (1)', 'used_but_empty');
    const result = await restoreFrom(shopBackup, { database: 'used_but_empty', mode: 'new' });
    assert.deepEqual(byName(result.objects), byName(shopBackup.objects ?? []));
    assert.deepEqual((await fingerprint('used_but_empty')).tables, (await fingerprint('shop')).tables);
  });
});

describe("the database's own error reaches the user (finding 6)", () => {
  let owned: Snapshot;

  // The restoring user may create databases but is no member of the tables' owner: psql's own error.
  const restorer = () => `postgresql://restorer@${pg.host}:${pg.port}/owned_again`;
  const notMember = /ERROR: {1,2}must be (member of|able to SET) role "app_owner"/;

  before(async () => {
    await pg.psql(
      `create role app_owner; create role restorer login createdb password '${pg.password}'; create database owned`,
    );
    await pg.psql(
      // the error comes first in the dump, then megabytes of rows still stream in
      `create table public.accounts (id int primary key, note text); alter table public.accounts owner to app_owner;
       insert into public.accounts select g, md5(g::text) from generate_series(1, 300000) g`,
      'owned',
    );
    owned = await backupOf('owned');
  });

  test("the CLI prints psql's first error: the restoring user may not own the tables", async () => {
    const args = restoreArgs(owned, 'owned_again', 'new').map((arg) => (arg.includes('postgres@') ? restorer() : arg));
    const { code, stderr } = await tidemark(args).exited;
    assert.equal(code, 1, stderr);
    assert.match(
      stderr,
      /tidemark: restoring into "owned_again" on .* failed, target left unchanged: psql:<stdin>:\d+: /,
    );
    assert.match(stderr, notMember);
    assert.doesNotMatch(stderr, /operation was aborted|output was closed/);
    assert.equal(await databaseExists('owned_again'), false);
  });

  test('the agent result (status and Event of the RestoreRequest) carries it too', async () => {
    const resultFile = join(workDir.path, 'restore-result.json');
    const { code } = await tidemark(['agent', 'restore'], {
      TIDEMARK_REPO: repoUrl,
      TIDEMARK_REPO_KEY: passphrase,
      TIDEMARK_SNAPSHOT: owned.id,
      TIDEMARK_TARGET: restorer(),
      TIDEMARK_RESTORE_MODE: 'new',
      TIDEMARK_RESULT_FILE: resultFile,
    }).exited;
    assert.equal(code, 1);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as {
      ok: boolean;
      error: { code: string; message: string };
    };
    assert.equal(result.ok, false);
    assert.match(result.error.message, notMember);
  });

  test("a backup failing on a lock shows pg_dump's error with its DETAIL naming the table", async () => {
    await pg.psql('create database locked; ');
    await pg.psql('create table public.busy (id int)', 'locked');
    const holder = spawn(
      'psql',
      ['-X', '-q', '-d', 'locked', '-c', 'begin; lock table public.busy; select pg_sleep(60);'],
      {
        env: { ...process.env, ...pg.env, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` },
        stdio: 'ignore',
      },
    );
    try {
      await waitUntil(
        'the lock held',
        async () =>
          (
            await pg.psql(
              "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and relation = 'public.busy'::regclass",
              'locked',
            )
          ).trim() === '1',
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      const source = new PostgresSource({ ...pg, databases: ['locked'], lockWaitTimeoutSeconds: 1 });
      const dump = await source.dump();
      await assert.rejects(
        backupStreams(repository, dump.streams, { type: 'full', source: source.description }),
        (error: Error) => {
          assert.match(
            error.message,
            /ERROR: canceling statement due to (lock|statement) timeout; pg_dump: detail: Query was: LOCK TABLE public\.busy IN ACCESS SHARE MODE/,
          );
          return true;
        },
      );
    } finally {
      holder.kill();
    }
  });
});

describe('content a tenant controls cannot make its backup unrestorable (finding 5)', () => {
  const forged = (table: string) =>
    `\n--\n-- Data for Name: ${table}; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nCOPY public.${table} (a) FROM stdin;\n1\n2\n\\.\n`;
  let hostile: Snapshot;

  before(async () => {
    await pg.psql('create database hostile');
    const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await pg.psql(
      `create table public.plain (a text default ${literal(`x\n\\.\n${forged('in_default')}`)});
       insert into public.plain values ('one'), (E'two\\nlines'), (E'\\\\.');
       comment on table public.plain is ${literal(forged('in_comment'))};
       comment on column public.plain.a is ${literal(`it's ${forged('in_column_comment')}`)};
       create table public."new
line" (a int);
       insert into public."new
line" select generate_series(1, 3);
       create table public."it's" (a int); insert into public."it's" values (1);
       create table public."\\." ("\\." text); insert into public."\\." values (E'\\\\.'), ('\\.');
       create table public."-- Data for Name: x; Type: TABLE DATA;" (a int); insert into public."-- Data for Name: x; Type: TABLE DATA;" values (1);
       create schema "we;ird $$ ""schema";
       create table "we;ird $$ ""schema"."COPY public.t (a) FROM stdin;" (a int);
       insert into "we;ird $$ ""schema"."COPY public.t (a) FROM stdin;" select generate_series(1, 4);
       create function public.loader() returns void language plpgsql as $body$
         begin
           execute $$${forged('in_function').replaceAll('$', '')}$$;
         end $body$;
       create table public.forged (a int); create table public.in_comment (a int);`,
      'hostile',
    );
    hostile = await backupOf('hostile');
  });

  test('the backup counts every table as the server does, and nothing forged', async () => {
    const live = await sourceFor('hostile').countRows('hostile');
    assert.deepEqual(byName(hostile.objects ?? []), byName(live));
    assert.deepEqual(hostile.skipped ?? [], []);
  });

  test('and restores, with the same counts and contents, and no warning', async () => {
    const result = await restoreFrom(hostile, { database: 'hostile_copy', mode: 'new' });
    assert.deepEqual(byName(result.objects), byName(hostile.objects ?? []));
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(await fingerprint('hostile_copy'), await fingerprint('hostile'));
    const stats = await sourceFor('hostile_copy').tableStats('hostile_copy', { checksums: true });
    const comparison = compareTables(hostile.objects ?? [], stats);
    assert.ok(comparison.ok, `checksums of the copy equal the backup's: ${describeDifferences(comparison)}`);
  });

  test('counts that differ from the backup are reported in the result, and the restore still succeeds', async () => {
    const doctored = (hostile.objects ?? []).map((o) => (o.name === 'public.plain' ? { ...o, records: 999 } : o));
    const snapshot = await backupOf('hostile', doctored);
    const outcome = await runRestore({
      repository,
      snapshot,
      targetUrl: `postgresql://postgres@${pg.host}:${pg.port}/hostile_doctored`,
      mode: 'new',
      env: { ...process.env, PGPASSWORD: pg.password },
    });
    assert.deepEqual(outcome.warnings, [
      "restored row counts differ from the backup's: public.plain: 3 restored, 999 in the backup",
    ]);
    assert.deepEqual((await fingerprint('hostile_doctored')).tables, (await fingerprint('hostile')).tables);
  });

  test('a script the dump reader cannot follow still restores: psql decides, the counts are a warning', async () => {
    // \copy reads its rows from the script: psql runs a COPY the reader does not see as one
    const script = 'create table public.t (a int);\n\\copy public.t from stdin\n1\n2\n\\.\n';
    const result = await server().restore(Readable.from([Buffer.from(script)]), {
      database: 'unreadable',
      mode: 'new',
    });
    assert.deepEqual(result.objects, []);
    assert.match(
      result.warnings?.join('\n') ?? '',
      /restored row counts of "unreadable" unknown: psql ran 1 COPY commands but the dump reader found 0 COPY blocks/,
    );
    assert.equal((await pg.psql('select count(*) from public.t', 'unreadable')).trim(), '2');
  });
});

describe('signals and kills leave the target as it was, and no scratch database (finding 3, kill test)', () => {
  const sleepSQL = join(workDir.path, 'sleep.sql');
  let nextRestore = 0;
  let bigBackup: Snapshot;

  before(async () => {
    writeFileSync(sleepSQL, "update app.customers set email = 'anonymised'; select pg_sleep(60);");
    await restoreFrom(shopBackup, { database: 'live', mode: 'new' });
    await pg.psql(
      "insert into app.orders (customer_id, total) values (1, 1); update app.customers set email = 'changed' where id = 7",
      'live',
    );
    await pg.psql('create database empty_target; create database big');
    await pg.psql(
      `create schema app; create table app.customers (id int primary key, email text);
       insert into app.customers select g, md5(g::text) || '@shop.example' from generate_series(1, 600000) g`,
      'big',
    );
    bigBackup = await backupOf('big');
  });

  /** Waits for the restore to reach `point`: its scratch database exists, or its post-restore SQL runs. */
  async function reach(point: 'early' | 'loading' | 'late') {
    const running = async (query: string) =>
      (
        await pg.psql(
          `select count(*) from pg_stat_activity where query like '${query}' and pid <> pg_backend_pid() and datname like 'tidemark%'`,
        )
      ).trim() !== '0';
    await waitUntil(
      `the restore at point ${point}`,
      async () =>
        point === 'early'
          ? (await scratchDatabases()).length > 0
          : running(point === 'loading' ? 'COPY app.customers %' : '%pg_sleep(60)%'),
      { timeoutMs: 60_000, intervalMs: 20 },
    );
  }

  /** The next restore on the server: it drops what a killed one left, and leaves nothing itself. */
  async function restoreAgain(): Promise<string> {
    const { code, stdout, stderr } = await tidemark(restoreArgs(shopBackup, `next_${++nextRestore}`, 'new')).exited;
    assert.equal(code, 0, stderr);
    assert.deepEqual(await scratchDatabases(), []);
    return stdout;
  }

  const cases = [
    { signal: 'SIGTERM', point: 'early', mode: 'new', target: 'never_created' },
    { signal: 'SIGTERM', point: 'loading', mode: 'replace', target: 'live' },
    { signal: 'SIGKILL', point: 'loading', mode: 'new', target: 'empty_target' },
    { signal: 'SIGTERM', point: 'late', mode: 'replace', target: 'live' },
    { signal: 'SIGINT', point: 'late', mode: 'new', target: 'empty_target' },
    { signal: 'SIGKILL', point: 'early', mode: 'replace', target: 'live' },
    { signal: 'SIGKILL', point: 'late', mode: 'new', target: 'empty_target' },
    { signal: 'SIGKILL', point: 'late', mode: 'replace', target: 'live' },
  ] as const;

  for (const { signal, point, mode, target } of cases) {
    test(`${signal} ${point} in mode ${mode}: the target is exactly as before`, async () => {
      const existed = await databaseExists(target);
      const before = existed ? await fingerprint(target) : undefined;
      // a dump large enough to be caught loading
      const snapshot = point === 'loading' ? bigBackup : shopBackup;
      const restore = tidemark(restoreArgs(snapshot, target, mode, ['--post-restore-sql', sleepSQL]));
      await reach(point);
      restore.child.kill(signal);
      const { code, stderr } = await restore.exited;
      assert.equal(await databaseExists(target), existed);
      if (before) assert.deepEqual(await fingerprint(target), before);
      if (signal === 'SIGKILL') {
        assert.equal(code, null);
        const leftovers = await scratchDatabases();
        const stdout = await restoreAgain();
        for (const name of leftovers)
          assert.match(stdout, new RegExp(`dropped database "${name}" left by an interrupted restore`));
      } else {
        assert.equal(code, 1, stderr);
        assert.match(
          stderr,
          new RegExp(
            `restoring into "${target}" on .* was interrupted by ${signal}, target left unchanged \\(Interrupted\\)`,
          ),
        );
        assert.deepEqual(await scratchDatabases(), [], 'the interrupted restore dropped its scratch database');
        await restoreAgain();
      }
      assert.equal(await databaseExists(target), existed);
      if (before) assert.deepEqual(await fingerprint(target), before);
    });
  }

  test('a restore running while another one starts is left alone', async () => {
    writeFileSync(join(workDir.path, 'short-sleep.sql'), 'select pg_sleep(3)');
    const first = tidemark(
      restoreArgs(shopBackup, 'slow_one', 'new', ['--post-restore-sql', join(workDir.path, 'short-sleep.sql')]),
    );
    await waitUntil(
      'the first restore in its post-restore SQL',
      async () =>
        (
          await pg.psql(
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(3)' and datname like 'tidemark%'",
          )
        ).trim() !== '0',
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    const running = await scratchDatabases();
    assert.equal(running.length, 1, `${running} ${await pg.psql('select datname, query from pg_stat_activity')}`);
    const stdout = await tidemark(restoreArgs(shopBackup, 'quick_one', 'new')).exited;
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.doesNotMatch(stdout.stdout, /dropped database/);
    const { code, stderr } = await first.exited;
    assert.equal(code, 0, stderr);
    assert.deepEqual((await fingerprint('slow_one')).tables, (await fingerprint('shop')).tables);
  });

  test('a cleanup that fails (the server gone) is reported with the error', async () => {
    const second = await startPostgres(join(workDir.path, 'second'));
    try {
      writeFileSync(join(workDir.path, 'long-sleep.sql'), 'select pg_sleep(30)');
      const args = restoreArgs(shopBackup, 'lost', 'new', ['--post-restore-sql', join(workDir.path, 'long-sleep.sql')]);
      args[args.indexOf('--target') + 1] = `postgresql://postgres@${second.host}:${second.port}/lost`;
      const restore = tidemark(args, second.env);
      await waitUntil(
        'the post-restore SQL running',
        async () =>
          (
            await second.psql(
              "select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()",
            )
          ).trim() !== '0',
        { timeoutMs: 60_000, intervalMs: 20 },
      );
      const [scratch] = (
        await second.psql("select datname from pg_database where datname like 'tidemark\\_restore\\_%'")
      ).split('\n');
      await second.stop();
      const { code, stderr } = await restore.exited;
      assert.equal(code, 1);
      assert.match(
        stderr,
        /post-restore SQL failed on the restored copy of "lost", target left unchanged: .*terminating connection/,
      );
      assert.match(
        stderr,
        new RegExp(
          `; and the scratch database "${scratch}" could not be dropped \\(dropping database "${scratch}" on .*: psql: error: connection to server .*\\): the next restore on .* drops it, or drop it by hand`,
        ),
      );
    } finally {
      await second.stop();
    }
  });
});
