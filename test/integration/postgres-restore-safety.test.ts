// Issue 9, PostgreSQL restores against a real PostgreSQL server: mode `new` means empty (finding 1),
// signals and killed restores leave the target as it was and no scratch database behind (finding 3 and
// the kill test), content a tenant controls cannot make a backup unrestorable (finding 5), and the
// database's own error reaches the user (finding 6). R-RESTORE, R-BACKUP, SPEC section 4 "Bad input".
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runRestore } from '../../src/agent/run-restore.ts';
import { isCode, type TidemarkError } from '../../src/errors.ts';
import { backupStreams } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { restoreStream } from '../../src/repository/restore.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { PostgresSource } from '../../src/sources/postgres/postgres.ts';
import type { DatabaseRestoreOptions, ObjectCount } from '../../src/sources/source.ts';
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
const byName = (counts: ObjectCount[]) => [...counts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
  const tables: Record<string, string> = {};
  for (const { name } of await sourceFor(database).countRows(database)) {
    const [schemaName, table] = name.split(/\.(?=[^.]*$)/) as [string, string];
    const ident = `"${schemaName.replaceAll('"', '""')}"."${table.replaceAll('"', '""')}"`;
    tables[name] = (
      await pg.psql(`select md5(coalesce(string_agg(t::text, ',' order by t::text), '')) from ${ident} t`, database)
    ).trim();
  }
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
