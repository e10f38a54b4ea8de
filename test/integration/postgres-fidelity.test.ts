// PostgreSQL restore fidelity: a database holding every kind of object, with database-level state
// (encoding, ICU locale, settings, privileges, comment), backed up into a real repository and restored
// into a fresh server. The copy must equal the source in its schema dump, every table's rows and the
// database's own state; any difference fails unless the backup listed it as lossy. R-BACKUP, R-RESTORE.
import assert from 'node:assert/strict';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBackup } from '../../src/agent/run-backup.ts';
import { runRestore } from '../../src/agent/run-restore.ts';
import { isCode, type TidemarkError } from '../../src/errors.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { findTools } from '../../src/sources/postgres/tools.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { runCommand } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('postgres-fidelity');
process.env.PGCLIENTENCODING = 'UTF8'; // the harness's psql sends this file's non-ASCII text as UTF-8
let source: PostgresServer;
let fresh: PostgresServer;
let repository: Repository;

const ROLES = ['app_owner', 'app_reader', 'app_writer', 'Tenant "Admin"'];

// Every object kind a DBA's database holds; each line names what it exercises.
const SCHEMA = `
create extension hstore;
create extension citext;
create extension pgcrypto with schema public;
create extension btree_gist;
create extension ltree;
create extension postgres_fdw;
create schema app authorization app_owner;
create schema "Odd Schema";
comment on schema app is 'the application';
set role app_owner;
-- types: enum, composite, domain, range
create type app.status as enum ('new', 'paid', 'shipped');
create type app.money as (amount numeric(12, 2), currency char(3));
create domain app.email as citext check (value ~ '@');
create type app.floatrange as range (subtype = float8);
comment on type app.status is 'order status';
-- every common column type, identity and generated columns
create table app.things (
  id bigint generated always as identity primary key,
  n_small smallint, n_int int, n_big bigint, n_num numeric, n_num_scaled numeric(20, 6),
  f4 real, f8 double precision, ok boolean, t text, vc varchar(20), ch char(5), name_col name,
  b bytea, d date, tm time, tmtz timetz, ts timestamp, tstz timestamptz, iv interval,
  u uuid, j json, jb jsonb, x xml, ip inet, net cidr, mac macaddr, bits bit(8), vbits varbit,
  ints int[], texts text[], matrix float8[][], r_int int4range, r_ts tstzrange, r_num numrange,
  multi int4multirange, pt point, bx box, circ circle, tsv tsvector, money_col money,
  hs hstore, ci citext, path ltree, mail app.email, st app.status, amount app.money, fr app.floatrange,
  total numeric generated always as (coalesce(n_num, 0) * 2) stored
);
comment on table app.things is 'one of every type';
comment on column app.things.t is 'free text';
insert into app.things (n_small, n_int, n_big, n_num, n_num_scaled, f4, f8, ok, t, vc, ch, name_col, b, d, tm, tmtz,
  ts, tstz, iv, u, j, jb, x, ip, net, mac, bits, vbits, ints, texts, matrix, r_int, r_ts, r_num, multi, pt, bx, circ,
  tsv, money_col, hs, ci, path, mail, st, amount, fr)
select g, g * 1000, g::bigint * 1000000000, g / 7.0, g / 3.0, g / 3.0, pi() * g / 7, g % 2 = 0,
  E'line\\nbreak\\ttab \\\\ back ' || g || ' ünïcødé 😀', 'v' || g, 'c' || (g % 10), 'n' || g,
  decode(md5(g::text), 'hex') || '\\x00ff'::bytea, date '2020-01-01' + g, time '10:00' + g * interval '1 min',
  timetz '10:00+02', timestamp '2020-01-01' + g * interval '1 hour', timestamptz '2020-01-01 00:00+00' + g * interval '1 day',
  g * interval '1 day 2 hours', gen_random_uuid(), json_build_object('g', g, 'a', json_build_array(1, 'x')),
  jsonb_build_object('g', g, 'nested', jsonb_build_object('k', null)), xmlelement(name thing, g),
  ('10.0.' || (g % 255) || '.1')::inet, '10.1.0.0/16', '08:00:2b:01:02:03', (g % 256)::bit(8), B'101',
  array[g, g + 1, null], array['a', null, 'c''d', ''], array[[1.5, 2.5], [3e300, -0.0]],
  int4range(g, g + 10), tstzrange('2020-01-01', '2021-01-01'), numrange(1.5, 2.5, '[]'),
  int4multirange(int4range(1, 3), int4range(5, 8)), point(g, -g), box(point(0, 0), point(g, g)),
  circle(point(1, 1), g), to_tsvector('english', 'the quick brown fox ' || g), g * 1.25,
  hstore('k' || g, 'v'), 'MiXeD ' || g, ('top.mid.leaf' || g)::ltree, ('u' || g || '@example.org')::app.email, 'paid', row(g::numeric(12, 2), 'EUR'::char(3))::app.money,
  app.floatrange(0.1 * g, 0.2 * g)
from generate_series(1, 300) g;
insert into app.things (f4, f8, n_num) values ('NaN', '-Infinity', 'NaN'), ('Infinity', 1e-310, 1e-30), (-0.0, 0.1 + 0.2, null);
-- partitions (with a default), inheritance, an unlogged table, a table in an odd schema
create table app.ledger (day date not null, amount int) partition by range (day);
create table app.ledger_2025 partition of app.ledger for values from ('2025-01-01') to ('2026-01-01');
create table app.ledger_default partition of app.ledger default;
insert into app.ledger select date '2025-06-01' + g, g from generate_series(1, 400) g;
create table app.animals (id serial primary key, name text);
create table app.dogs (good boolean default true) inherits (app.animals);
insert into app.animals (name) values ('generic');
insert into app.dogs (name, good) values ('rex', true), ('fido', false);
create unlogged table app.sessions (token text primary key);
insert into app.sessions select md5(g::text) from generate_series(1, 20) g;
-- constraints: foreign keys (deferrable), check, unique, exclusion; indexes: partial, expression, gist
create table app.customers (id serial primary key, email app.email unique, vip boolean check (vip is not null));
insert into app.customers (email, vip) select 'c' || g || '@x.org', g % 5 = 0 from generate_series(1, 50) g;
create table app.orders (id bigserial primary key,
  customer_id int references app.customers on delete cascade deferrable initially deferred,
  status app.status not null default 'new', during tstzrange,
  exclude using gist (customer_id with =, during with &&));
insert into app.orders (customer_id, status, during)
  select 1 + g % 50, 'paid', tstzrange(timestamptz '2020-01-01' + g * interval '1 day', timestamptz '2020-01-01' + (g + 1) * interval '1 day')
  from generate_series(1, 200) g;
create index orders_paid on app.orders (customer_id) where status = 'paid';
create index customers_lower on app.customers (lower(email::text));
comment on index app.orders_paid is 'paid orders';
comment on constraint customers_vip_check on app.customers is 'vip is known';
-- sequences and their current values
create sequence app.invoice_no start 1000 increment 7 cache 1;
select setval('app.invoice_no', 4242, true);
create sequence app.fresh_seq;
-- views, a materialized view, a rule
create view app.vip_customers with (security_barrier) as select id, email from app.customers where vip with local check option;
create materialized view app.order_counts as select customer_id, count(*) as n from app.orders group by customer_id;
create unique index on app.order_counts (customer_id);
create table app.audit (at timestamptz default now(), what text);
create rule log_sessions as on insert to app.sessions do also insert into app.audit (what) values ('session ' || new.token);
comment on view app.vip_customers is 'the VIPs';
-- functions, a procedure, an aggregate, triggers (row, statement, constraint)
create function app.double(x numeric) returns numeric language sql immutable parallel safe as 'select x * 2';
create function app.touch() returns trigger language plpgsql security definer set search_path = app, pg_temp as $f$
begin new.name := coalesce(new.name, 'unnamed'); return new; end $f$;
create procedure app.archive(days int) language plpgsql as $p$ begin delete from app.audit where at < now() - days * interval '1 day'; end $p$;
create aggregate app.product(numeric) (sfunc = numeric_mul, stype = numeric, initcond = '1');
create trigger animals_touch before insert or update on app.animals for each row execute function app.touch();
create function app.noop() returns trigger language plpgsql as $f$ begin return null; end $f$;
create trigger ledger_statement after truncate on app.ledger for each statement execute function app.noop();
create constraint trigger orders_check after insert on app.orders deferrable initially deferred for each row execute function app.noop();
comment on function app.double(numeric) is 'twice';
-- collations, text search, statistics
create collation app.german (provider = icu, locale = 'de');
create table app.words (w text collate app.german);
insert into app.words values ('Äpfel'), ('Zebra'), ('apfel'), ('Ähre'), ('zoo'), ('Ökonom');
create text search configuration app.english_simple (copy = english);
create statistics app.orders_stats (dependencies) on customer_id, status from app.orders;
-- row-level security
create table app.tenant_data (tenant text, payload text);
insert into app.tenant_data values ('app_reader', 'secret');
alter table app.tenant_data enable row level security;
alter table app.tenant_data force row level security;
create policy tenant_read on app.tenant_data for select to app_reader using (tenant = current_user);
create policy tenant_write on app.tenant_data for insert to app_writer with check (tenant = current_user);
-- grants (table, column, sequence, function, schema) and default privileges
grant usage on schema app to app_reader, app_writer;
grant select on app.customers to app_reader;
grant select (id, status) on app.orders to app_reader with grant option;
grant insert on app.tenant_data to app_writer;
grant usage on sequence app.invoice_no to app_writer;
revoke execute on function app.double(numeric) from public;
grant execute on function app.double(numeric) to app_reader;
alter default privileges in schema app grant select on tables to app_reader;
alter default privileges revoke execute on functions from public;
-- operators, casts, text search dictionaries, table and column storage settings
create function app.money_eq(a app.money, b app.money) returns boolean language sql immutable as 'select a = b';
create operator app.=== (leftarg = app.money, rightarg = app.money, function = app.money_eq, commutator = operator(app.===));
create function app.status_text(s app.status) returns text language sql immutable as 'select s::text';
create text search dictionary app.simple_dict (template = pg_catalog.simple, stopwords = english);
alter table app.customers set (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);
alter table app.customers alter column email set statistics 500;
alter table app.things alter column t set storage external;
alter table app.orders replica identity full;
alter table app.orders cluster on orders_pkey;
reset role;
create cast (app.status as text) with function app.status_text(app.status);
-- objects the superuser owns: an event trigger, a publication, a foreign server and user mapping
create function public.on_ddl() returns event_trigger language plpgsql as $f$ begin end $f$;
create event trigger ddl_watch on ddl_command_end execute function public.on_ddl();
create publication app_pub for table app.customers, app.orders;
create subscription app_sub connection 'host=db.example dbname=x' publication app_pub
  with (connect = false, enabled = false, create_slot = false, slot_name = none);
create server remote foreign data wrapper postgres_fdw options (host 'db.example', dbname 'x');
create user mapping for app_owner server remote options (user 'remote_app');
create foreign table app.remote_things (id int) server remote options (table_name 'things');
grant usage on foreign server remote to app_owner;
-- an oddly named table owned by an oddly named role (names with line breaks: postgres-source.test.ts)
create table "Odd Schema"."Odd ""Table"", with spaces" (v text);
insert into "Odd Schema"."Odd ""Table"", with spaces" values ('x');
alter table "Odd Schema"."Odd ""Table"", with spaces" owner to "Tenant ""Admin""";
-- large objects with owner, grants and comments
select lo_from_bytea(424242, decode(repeat('ab', 5000), 'hex'));
alter large object 424242 owner to app_owner;
grant select on large object 424242 to app_reader;
comment on large object 424242 is 'a blob';
select lo_from_bytea(0, 'a second large object');
`;

// The database's own state: what pg_dump leaves out of a per-database dump.
const DATABASE_STATE = `
alter database fidelity set work_mem = '16MB';
alter database fidelity set search_path = "$user", app, "Odd Schema";
alter database fidelity set app.tenant = 'it''s ours';
alter database fidelity set datestyle = 'ISO, DMY';
alter role app_reader in database fidelity set statement_timeout = '5s';
alter database fidelity owner to app_owner;
alter database fidelity connection limit 50;
revoke connect, temporary on database fidelity from public;
grant connect on database fidelity to app_reader, app_writer;
grant create on database fidelity to app_writer with grant option;
comment on database fidelity is 'fidelity: ünïcødé, quotes '' and "';
`;

/** The database's state, one line per fact, comparable between servers. */
async function databaseState(pg: PostgresServer, database: string): Promise<string[]> {
  const out = await pg.psql(
    `select unnest(array['encoding ' || pg_encoding_to_char(encoding), 'collate ' || datcollate, 'ctype ' || datctype,
            'provider ' || datlocprovider::text, 'icu locale ' || coalesce(daticulocale, '-'), 'limit ' || datconnlimit,
            'owner ' || pg_get_userbyid(datdba), 'acl ' || coalesce(datacl::text, 'default'),
            'comment ' || coalesce(shobj_description(oid, 'pg_database'), '-')])
       from pg_database where datname = '${database}'
     union all
     select 'setting ' || coalesce(pg_get_userbyid(nullif(setrole, 0))::text, '-') || ' ' || setconfig::text
       from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = '${database}')
     order by 1`,
  );
  return out.split('\n').filter(Boolean);
}

/** `pg_dump --schema-only` without comments, blank lines and the database's own name. */
async function schemaDump(pg: PostgresServer, database: string): Promise<string[]> {
  const { pgDump } = await findTools();
  const dumpFile = join(workDir.path, `schema-${pg.port}-${database}.sql`);
  await runCommand(pgDump, ['--schema-only', '--blobs', '--file', dumpFile, database], {
    env: { ...process.env, ...pg.env },
    logFile: join(workDir.path, 'pg_dump.log'),
  });
  return (await readFile(dumpFile, 'utf8'))
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('--') && !/^\\(un)?restrict /.test(line))
    .map((line) => line.replaceAll(database, '<database>'));
}

/**
 * An md5 of every relation's rows in text order (sequences: their value, not log_cnt, which counts
 * values WAL-logged ahead; large objects: their bytes).
 * The order is the database's collation's, so a database restored with another collation differs.
 */
async function checksums(pg: PostgresServer, database: string): Promise<string[]> {
  const out = await pg.psql(
    `select format('select %L || '' '' || (select md5(coalesce(string_agg(t::text, E''\\n'' order by t::text), '''')) from (select %s from %s) t)',
                   format('%I.%I', n.nspname, c.relname), case c.relkind when 'S' then 'last_value, is_called' else '*' end, c.oid::regclass)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'S', 'm') and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
        and not exists (select from pg_depend e where e.objid = c.oid and e.deptype = 'e')
      order by 1
     \\gexec
     select 'large object ' || oid || ' ' || md5(lo_get(oid)) from pg_largeobject_metadata order by oid;`,
    database,
  );
  return out.split('\n').filter(Boolean);
}

/** What differs between two lists of lines, as `-` (source only) and `+` (copy only) lines. */
function differences(from: string[], to: string[]): string[] {
  const count = (lines: string[]) => {
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
    return counts;
  };
  const a = count(from);
  const b = count(to);
  const out: string[] = [];
  for (const [line, n] of a) if ((b.get(line) ?? 0) < n) out.push(`- ${line}`);
  for (const [line, n] of b) if ((a.get(line) ?? 0) < n) out.push(`+ ${line}`);
  return out;
}

/** Differences the backup did not announce: one passes only when a skipped entry names its object. */
function unannounced(diffs: string[], snapshot: Snapshot): string[] {
  const names = (snapshot.skipped ?? []).flatMap((s) => [...s.reason.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? ''));
  return diffs.filter((diff) => !names.some((name) => name && diff.includes(name)));
}

async function backup(database: string): Promise<Snapshot> {
  return runBackup({
    sourceUrl: `postgresql://postgres@${source.host}:${source.port}/${database}`,
    repository,
    type: 'full',
    env: { PGPASSWORD: source.password },
  });
}

const restoreInto = (server: PostgresServer, snapshot: Snapshot, database: string, createMissingRoles = false) =>
  runRestore({
    repository,
    snapshot,
    targetUrl: `postgresql://postgres@${server.host}:${server.port}/${database}`,
    mode: 'new',
    createMissingRoles,
    env: { PGPASSWORD: server.password },
  });

before(async () => {
  await chmod(workDir.path, 0o711); // each server's directory is below it (see startPostgres)
  source = await startPostgres(join(workDir.path, 'source'));
  fresh = await startPostgres(join(workDir.path, 'fresh'));
  repository = await Repository.init(openStorage(`file://${workDir.path}/repo`), Buffer.from('fidelity'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  await source.psql(
    `${ROLES.map((r) => `create role "${r.replaceAll('"', '""')}";`).join('\n')}
     create database fidelity template template0 encoding 'UTF8' locale_provider icu icu_locale 'de-u-co-phonebk' locale 'C';
     create database latin template template0 encoding 'LATIN1' locale 'C';`,
  );
  await source.psql(SCHEMA, 'fidelity');
  await source.psql(DATABASE_STATE);
  await source.psql(
    `create table caf\u00e9 (name text);
     insert into caf\u00e9 values ('cr\u00e8me br\u00fbl\u00e9e'), ('na\u00efve');
     comment on database latin is 'Latin-1: \u00e0 la carte';
     alter database latin set client_min_messages = 'warning';`,
    'latin',
  );
});

after(async () => {
  await fresh?.stop();
  await source?.stop();
  workDir.remove();
});

describe('postgres fidelity', { timeout: 300_000 }, () => {
  let fidelity: Snapshot | undefined;

  test('a restore into a server that lacks the roles the dump names fails before creating anything, listing them', async () => {
    fidelity = await backup('fidelity');
    const snapshot = fidelity;
    const before = await fresh.psql('select datname from pg_database order by 1');
    await assert.rejects(restoreInto(fresh, snapshot, 'fidelity'), (error: TidemarkError) => {
      assert.ok(isCode(error, 'InvalidArgument'), `${error.code}: ${error.message}`);
      for (const role of ['"app_owner"', '"app_reader"', '"app_writer"', '"Tenant ""Admin"""'])
        assert.ok(error.message.includes(role), `${role} is listed: ${error.message}`);
      return true;
    });
    assert.equal(await fresh.psql('select datname from pg_database order by 1'), before, 'no database was created');
    assert.equal((await fresh.psql("select count(*) from pg_roles where rolname like 'app\\_%'")).trim(), '0');
  });

  test('restored into a fresh server, every object, row and database setting is the same', async () => {
    fidelity ??= await backup('fidelity'); // when run on its own
    const result = await restoreInto(fresh, fidelity, 'fidelity', true);
    const created = await fresh.psql(
      `select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolpassword is null
         from pg_authid where rolname = any(array['app_owner', 'app_reader', 'app_writer', 'Tenant "Admin"']) order by 1`,
    );
    assert.equal(created.trim().split('\n').length, 4, `the missing roles were created: ${created}`);
    assert.ok(
      created
        .trim()
        .split('\n')
        .every((line) => line.endsWith('|f|f|f|f|t')),
      `as NOLOGIN roles without privileges or password: ${created}`,
    );
    assert.deepEqual(
      result.skipped.map((s) => s.path).sort(),
      ROLES.map((r) => `role ${r}`).sort(),
      'the created roles are reported',
    );

    const sums = await checksums(source, 'fidelity');
    const schema = await schemaDump(source, 'fidelity');
    for (const relation of ['app.things ', 'app.ledger_2025 ', 'app.dogs ', 'app.invoice_no ', 'app.order_counts '])
      assert.ok(
        sums.some((line) => line.startsWith(relation)),
        `${relation}is compared: ${sums}`,
      );
    assert.ok(sums.some((line) => line.startsWith('large object 424242 ')));
    assert.ok(schema.length > 300, `the schema dump is compared (${schema.length} lines)`);
    const diffs = [
      ...differences(await databaseState(source, 'fidelity'), await databaseState(fresh, 'fidelity')),
      ...differences(schema, await schemaDump(fresh, 'fidelity')),
      ...differences(sums, await checksums(fresh, 'fidelity')),
    ];
    assert.deepEqual(unannounced(diffs, fidelity), [], 'the copy differs where the backup said nothing');
    assert.deepEqual(fidelity.skipped ?? [], [], 'nothing of this database is lossy');
  });

  test('a LATIN1 database comes back LATIN1, with its text, comment and settings', async () => {
    const latin = await backup('latin');
    await restoreInto(fresh, latin, 'latin_copy');
    const state = (pg: PostgresServer, db: string) =>
      databaseState(pg, db).then((lines) => lines.map((l) => l.replaceAll(db, '<db>')));
    assert.deepEqual(await state(fresh, 'latin_copy'), await state(source, 'latin'));
    assert.ok((await state(fresh, 'latin_copy')).includes('encoding LATIN1'));
    assert.equal(
      await fresh.psql('select name from caf\u00e9 order by 1', 'latin_copy'),
      await source.psql('select name from caf\u00e9 order by 1', 'latin'),
    );
    assert.deepEqual(await checksums(fresh, 'latin_copy'), await checksums(source, 'latin'));
  });

  test('a part of the state the restoring user may not apply is reported, and the rest applied', async () => {
    const role = "create role restorer login createdb password 'restorer-pw'";
    await source.psql(`${role}; create database managed owner restorer;`);
    await fresh.psql(role);
    await source.psql(
      `alter database managed set log_min_duration_statement = 250; -- superusers only
       alter database managed set work_mem = '8MB';
       revoke connect on database managed from public;
       comment on database managed is 'hosted elsewhere';
       create table t (i int); alter table t owner to restorer; insert into t values (1);`,
      'managed',
    );
    const snapshot = await backup('managed');
    const result = await runRestore({
      repository,
      snapshot,
      targetUrl: `postgresql://restorer@${fresh.host}:${fresh.port}/managed_copy`,
      mode: 'new',
      env: { PGPASSWORD: 'restorer-pw' },
    });
    assert.equal(result.skipped.length, 1, JSON.stringify(result.skipped));
    assert.match(
      result.skipped[0]?.reason ?? '',
      /^setting log_min_duration_statement=250 of "managed_copy" not restored: ERROR: permission denied/,
    );
    const state = (pg: PostgresServer, db: string) =>
      databaseState(pg, db).then((lines) => lines.map((l) => l.replaceAll(db, '<db>')));
    assert.deepEqual(
      await state(fresh, 'managed_copy'),
      (await state(source, 'managed')).map((line) => line.replace('log_min_duration_statement=250,', '')),
    );
  });
});
