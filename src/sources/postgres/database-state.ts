import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { Skipped } from '../source.ts';
import type { Psql } from './client.ts';

/**
 * What a per-database pg_dump leaves out because it belongs to the database itself, not to anything in
 * it, plus the roles its statements name. Written as the first line of the database's dump stream (an
 * SQL comment: `psql -f` still loads the stream as it is), read back before the restore creates the
 * database.
 */
export interface DatabaseState {
  version: 1;
  encoding: string;
  /** libc `LC_COLLATE` and `LC_CTYPE`: an ICU database still has them. */
  collate: string;
  ctype: string;
  localeProvider: 'libc' | 'icu' | 'builtin';
  /** The ICU or builtin locale (PostgreSQL 15's `daticulocale`, 17's `datlocale`). */
  locale: string | null;
  icuRules: string | null;
  connectionLimit: number;
  owner: string;
  /** `pg_database.datacl` as text items (`grantee=privileges/grantor`); null: the default privileges. */
  acl: string[] | null;
  comment: string | null;
  /** `ALTER DATABASE … SET` (role null) and `ALTER ROLE … IN DATABASE … SET`, as `name=value`. */
  settings: { role: string | null; config: string[] }[];
  /** Every role the dump and this state name: owners, grantees and grantors, policy roles, role settings. */
  roles: string[];
}

const HEADER = '-- tidemark-database-state: ';
/** A header longer than this is not ours: the first line of a dump is pg_dump's `--`. */
const MAX_HEADER_BYTES = 4 << 20;

// Owner columns of the per-database catalogs whose objects pg_dump dumps with an OWNER TO. Objects of
// the bootstrap superuser and of built-in roles are pinned, so pg_shdepend does not name their owner.
const OWNED: [catalog: string, owner: string][] = [
  ['pg_namespace', 'nspowner'],
  ['pg_class', 'relowner'],
  ['pg_proc', 'proowner'],
  ['pg_type', 'typowner'],
  ['pg_collation', 'collowner'],
  ['pg_conversion', 'conowner'],
  ['pg_operator', 'oprowner'],
  ['pg_opclass', 'opcowner'],
  ['pg_opfamily', 'opfowner'],
  ['pg_ts_config', 'cfgowner'],
  ['pg_ts_dict', 'dictowner'],
  ['pg_statistic_ext', 'stxowner'],
  ['pg_event_trigger', 'evtowner'],
  ['pg_foreign_data_wrapper', 'fdwowner'],
  ['pg_foreign_server', 'srvowner'],
  ['pg_publication', 'pubowner'],
  ['pg_largeobject_metadata', 'lomowner'],
  ['pg_default_acl', 'defaclrole'],
];

const REFERENCED_ROLES = `
  select refobjid from pg_catalog.pg_shdepend
   where dbid = d.oid and refclassid = 'pg_catalog.pg_authid'::regclass
  union select d.datdba
  union select setrole from pg_catalog.pg_db_role_setting where setdatabase = d.oid and setrole <> 0
  ${OWNED.map(
    ([catalog, owner]) => `union select o.${owner} from pg_catalog.${catalog} o
     where (o.oid >= 16384${catalog === 'pg_namespace' ? " or o.nspname = 'public'" : ''})
       and not exists (select from pg_catalog.pg_depend e where e.classid = 'pg_catalog.${catalog}'::regclass
                       and e.objid = o.oid and e.deptype = 'e')`,
  ).join('\n  ')}`;

// One JSON document; to_jsonb(d) because pg_database's locale columns differ between majors.
const CAPTURE = `
select json_build_object(
  'encoding', pg_catalog.pg_encoding_to_char(d.encoding),
  'database', to_jsonb(d),
  'owner', pg_catalog.pg_get_userbyid(d.datdba),
  'tablespace', (select spcname from pg_catalog.pg_tablespace where oid = d.dattablespace),
  'labels', (select count(*) from pg_catalog.pg_shseclabel
              where objoid = d.oid and classoid = 'pg_catalog.pg_database'::regclass),
  'acl', d.datacl::text[],
  'comment', pg_catalog.shobj_description(d.oid, 'pg_database'),
  'settings', (select coalesce(json_agg(json_build_object(
                  'role', case when s.setrole = 0 then null else pg_catalog.pg_get_userbyid(s.setrole) end,
                  'config', s.setconfig) order by s.setrole), '[]')
                 from pg_catalog.pg_db_role_setting s where s.setdatabase = d.oid),
  'roles', (select coalesce(json_agg(r.rolname order by r.rolname), '[]') from pg_catalog.pg_roles r
             where r.oid in (${REFERENCED_ROLES}))
)
from pg_catalog.pg_database d where d.datname = pg_catalog.current_database()`;

interface Captured {
  encoding: string;
  database: Record<string, unknown>;
  owner: string;
  tablespace: string;
  labels: number;
  acl: string[] | null;
  comment: string | null;
  settings: { role: string | null; config: string[] }[];
  roles: string[];
}

/** Reads the state of `database`, and what of it a restore cannot bring back (reported as skipped). */
export async function captureDatabaseState(
  psql: Psql,
  database: string,
  description: string,
): Promise<{ state: DatabaseState; skipped: Skipped[] }> {
  const [json] = await psql.query(database, CAPTURE, {
    doing: `reading the settings of database "${database}" on ${description}`,
  });
  const captured = JSON.parse(json ?? 'null') as Captured;
  const d = captured.database;
  const providers: Record<string, DatabaseState['localeProvider']> = { c: 'libc', i: 'icu', b: 'builtin' };
  const provider = providers[String(d.datlocprovider ?? 'c')] ?? 'libc';
  const state: DatabaseState = {
    version: 1,
    encoding: captured.encoding,
    collate: String(d.datcollate),
    ctype: String(d.datctype),
    localeProvider: provider,
    locale: provider === 'libc' ? null : (((d.datlocale ?? d.daticulocale) as string | null | undefined) ?? null),
    icuRules: (d.daticurules as string | null | undefined) ?? null,
    connectionLimit: Number(d.datconnlimit ?? -1),
    owner: captured.owner,
    acl: captured.acl,
    comment: captured.comment,
    settings: captured.settings,
    roles: captured.roles,
  };
  const lossy = (reason: string) => ({ path: database, reason });
  const skipped: Skipped[] = [];
  if (captured.tablespace !== 'pg_default')
    skipped.push(
      lossy(
        `database default tablespace "${captured.tablespace}" is not restored: tablespaces belong to the server, the restored database uses the target's default`,
      ),
    );
  if (captured.labels > 0) skipped.push(lossy('security labels on the database itself are not restored'));
  if (d.datistemplate === true)
    skipped.push(lossy('the database is a template; it is restored as an ordinary database'));
  return { state, skipped };
}

export function stateHeader(state: DatabaseState): Buffer {
  // JSON.stringify escapes every line break, so the comment is one line.
  return Buffer.from(`${HEADER}${JSON.stringify(state)}\n`);
}

/**
 * The state in the first line of a dump stream, or undefined for a dump written before states were
 * recorded. Reads no further than that line and puts what it read back, so `data` is whole again.
 */
export async function readDatabaseState(data: Readable): Promise<DatabaseState | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  for (;;) {
    const chunk = data.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      if (chunk.includes(0x0a) || length >= MAX_HEADER_BYTES) break;
      continue;
    }
    if (data.readableEnded || data.destroyed) {
      ended = true;
      break;
    }
    const ac = new AbortController();
    await Promise.race([
      once(data, 'readable', { signal: ac.signal }),
      once(data, 'end', { signal: ac.signal }),
      once(data, 'close', { signal: ac.signal }),
    ]).finally(() => ac.abort());
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) {
    if (ended)
      throw new TidemarkError(
        'InvalidArgument',
        'the dump stream ends before its first line ends: not a pg_dump output',
      );
    data.unshift(head);
  }
  const newline = head.indexOf(0x0a);
  const line = head.subarray(0, newline < 0 ? head.length : newline).toString('utf8');
  if (!line.startsWith(HEADER)) return undefined;
  let state: DatabaseState;
  try {
    state = JSON.parse(line.slice(HEADER.length)) as DatabaseState;
  } catch (error) {
    throw new TidemarkError('Corrupt', `the dump's database state line is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (state.version !== 1)
    throw new TidemarkError(
      'Unsupported',
      `the backup records database state version ${state.version}; this tidemark reads version 1`,
    );
  return state;
}

/**
 * Fails, before anything is created, when the target server lacks roles the dump names (its OWNER TO,
 * GRANT and policy statements would fail half-way), or creates them when asked: NOLOGIN, no password,
 * no attributes, so they only own and hold what the dump gives them. Returns what it created.
 */
export async function ensureRoles(
  psql: Psql,
  maintenance: string,
  state: DatabaseState,
  options: { create: boolean; target: string; server: string },
): Promise<Skipped[]> {
  if (state.roles.length === 0) return [];
  const missing = await psql.query(
    maintenance,
    `select r from json_array_elements_text(:'roles'::json) r
      where not exists (select from pg_catalog.pg_roles where rolname = r) order by r`,
    { vars: { roles: JSON.stringify(state.roles) }, doing: `looking for the backup's roles on ${options.server}` },
  );
  if (missing.length === 0) return [];
  const list = missing.map((role) => `"${role.replaceAll('"', '""')}"`).join(', ');
  if (!options.create)
    throw new TidemarkError(
      'InvalidArgument',
      `restoring "${options.target}" on ${options.server}: the backup names roles this server lacks: ${list}; create them (restore the globals of a backup of all databases, or let the restore create them as NOLOGIN roles with createMissingRoles), target left unchanged`,
    );
  for (const role of missing)
    await psql.query(maintenance, 'create role :"role" nologin', {
      vars: { role },
      doing: `creating role "${role}" on ${options.server}`,
    });
  return missing.map((role) => ({
    path: `role ${role}`,
    reason: 'created as a NOLOGIN role without password or attributes: the backup holds no role definitions',
  }));
}

/** `create database :"scratch" …` with the encoding, locale and provider of the backed-up one. */
export function createDatabaseSQL(
  state: DatabaseState | undefined,
  serverVersion: number,
): { sql: string; vars: Record<string, string> } {
  const sql = ['create database :"scratch" template template0'];
  if (!state) return { sql: sql[0] as string, vars: {} };
  const vars: Record<string, string> = { encoding: state.encoding, collate: state.collate, ctype: state.ctype };
  sql.push("encoding :'encoding' lc_collate :'collate' lc_ctype :'ctype'");
  const needs = (major: number, what: string) => {
    if (serverVersion < major * 10000)
      throw new TidemarkError(
        'Unsupported',
        `the backed-up database uses ${what}, which this server (version ${Math.floor(serverVersion / 10000)}) cannot create; restore into PostgreSQL ${major} or newer`,
      );
  };
  if (state.localeProvider !== 'libc') {
    needs(state.localeProvider === 'icu' ? 15 : 17, `the ${state.localeProvider} locale provider`);
    vars.provider = state.localeProvider;
    vars.locale = state.locale ?? '';
    sql.push(`locale_provider :'provider' ${state.localeProvider}_locale :'locale'`);
  } else if (serverVersion >= 150000) sql.push("locale_provider 'libc'");
  if (state.icuRules !== null) {
    needs(16, 'ICU collation rules');
    vars.rules = state.icuRules;
    sql.push("icu_rules :'rules'");
  }
  return { sql: sql.join(' '), vars };
}

/**
 * Gives the restored database the backed-up owner, settings, privileges and comment: after the load
 * and the post-restore SQL (a setting such as default_transaction_read_only would stop them), before
 * anyone can connect to it. Each part is applied on its own; a part the restoring user may not apply
 * (the owner, a superuser-only setting) is reported with the server's error and the rest still applied.
 * Connected to the database itself: shared catalogs (comments, settings) keep text in the encoding of
 * the database it was written from, as pg_dump's own `\connect` then COMMENT ON DATABASE does.
 */
export async function applyDatabaseState(
  psql: Psql,
  database: string,
  state: DatabaseState,
  target: string,
): Promise<Skipped[]> {
  const skipped: Skipped[] = [];
  const apply = async (part: string, sql: string, vars: Record<string, string>) => {
    try {
      await psql.query(database, sql, { vars: { ...vars, database }, doing: `${part} of "${target}" not restored` });
    } catch (error) {
      skipped.push({ path: target, reason: (error as Error).message });
    }
  };
  await apply(`owner "${state.owner}"`, 'alter database :"database" owner to :"owner"', { owner: state.owner });
  if (state.connectionLimit !== -1)
    // after the load: a limit of 0 would keep a restoring user that is not a superuser out
    await apply(`connection limit ${state.connectionLimit}`, 'alter database :"database" connection limit :limit', {
      limit: String(Math.trunc(state.connectionLimit)),
    });
  for (const { role, config } of state.settings)
    for (const setting of config) {
      const { sql, vars } = settingSQL(setting);
      const who = role === null ? '' : ` of role "${role}"`;
      await apply(
        `setting ${setting}${who}`,
        role === null ? `alter database :"database" ${sql}` : `alter role :"role" in database :"database" ${sql}`,
        role === null ? vars : { ...vars, role },
      );
    }
  if (state.acl !== null) {
    const { sql, vars } = aclSQL(state.acl, state.owner);
    await apply(`privileges ${JSON.stringify(state.acl)}`, sql, vars);
  }
  if (state.comment !== null)
    await apply('comment', 'comment on database :"database" is :\'comment\'', { comment: state.comment });
  return skipped;
}

// Settings whose value is a list of names: each element is quoted on its own (pg_dump's
// variable_is_guc_list_quote), or `search_path = "$user", public` would come back as one name.
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** `set <name> to <value>` for one `name=value` of pg_db_role_setting, with psql variables. */
export function settingSQL(setting: string): { sql: string; vars: Record<string, string> } {
  const equals = setting.indexOf('=');
  const name = setting.slice(0, equals);
  const value = setting.slice(equals + 1);
  const values = LIST_SETTINGS.has(name.toLowerCase()) ? splitNameList(value) : [value];
  const vars: Record<string, string> = { name };
  values.forEach((v, i) => {
    vars[`value${i}`] = v;
  });
  return { sql: `set :"name" to ${values.map((_, i) => `:'value${i}'`).join(', ')}`, vars };
}

/** PostgreSQL's SplitGUCList: names separated by commas, each maybe double-quoted (`""` inside). */
export function splitNameList(value: string): string[] {
  const names: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i] as string)) i++;
  };
  skipSpace();
  if (i === value.length) return names;
  for (;;) {
    let name = '';
    if (value[i] === '"') {
      for (i++; i < value.length; i++) {
        if (value[i] === '"') {
          if (value[i + 1] !== '"') break;
          i++;
        }
        name += value[i];
      }
      i++;
    } else {
      while (i < value.length && value[i] !== ',' && !/\s/.test(value[i] as string)) name += value[i++];
    }
    names.push(name);
    skipSpace();
    if (value[i] !== ',') return names;
    i++;
    skipSpace();
  }
}

const PRIVILEGES: Record<string, string> = { C: 'create', T: 'temporary', c: 'connect' };

/**
 * Replaces the database's privileges by `acl` exactly: everything is revoked from PUBLIC and the owner,
 * then each item granted again in order, as its grantor when that is not the owner (as pg_dump does).
 */
export function aclSQL(acl: string[], owner: string): { sql: string; vars: Record<string, string> } {
  const vars: Record<string, string> = { acl_owner: owner };
  const sql = ['revoke all on database :"database" from public, :"acl_owner";'];
  acl.forEach((item, i) => {
    const { grantee, privileges, grantOption, grantor } = parseAclItem(item);
    const to = grantee === '' ? 'public' : `:"grantee${i}"`;
    if (grantee !== '') vars[`grantee${i}`] = grantee;
    const grants = [
      privileges.length ? `grant ${privileges.join(', ')} on database :"database" to ${to};` : '',
      grantOption.length ? `grant ${grantOption.join(', ')} on database :"database" to ${to} with grant option;` : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (grantor === owner) sql.push(grants);
    else {
      vars[`grantor${i}`] = grantor;
      sql.push(`set role :"grantor${i}"; ${grants} reset role;`);
    }
  });
  return { sql: sql.join('\n'), vars };
}

/** `grantee=privileges/grantor`, names double-quoted when they hold special characters. */
export function parseAclItem(item: string): {
  grantee: string;
  privileges: string[];
  grantOption: string[];
  grantor: string;
} {
  let i = 0;
  const name = (): string => {
    let out = '';
    if (item[i] !== '"') {
      while (i < item.length && item[i] !== '=' && item[i] !== '/') out += item[i++];
      return out;
    }
    for (i++; i < item.length; i++) {
      if (item[i] === '"') {
        if (item[i + 1] !== '"') break;
        i++;
      }
      out += item[i];
    }
    i++;
    return out;
  };
  const grantee = name();
  if (item[i++] !== '=') throw new TidemarkError('InvalidArgument', `cannot read privilege item ${item}`);
  const privileges: string[] = [];
  const grantOption: string[] = [];
  while (i < item.length && item[i] !== '/') {
    const privilege = PRIVILEGES[item[i++] as string];
    if (!privilege) throw new TidemarkError('InvalidArgument', `unknown database privilege in ${item}`);
    if (item[i] === '*') {
      grantOption.push(privilege);
      i++;
    } else privileges.push(privilege);
  }
  i++;
  return { grantee, privileges, grantOption, grantor: name() };
}

/**
 * Creates the database a restore loads into, as the backed-up one was (its state read from the head of
 * `data`), once the roles the dump names exist. Returns the state to apply after the load, and what
 * the restore should report (roles it created, a backup without a recorded state).
 */
export async function createRestoreDatabase(
  psql: Psql,
  maintenance: string,
  database: string,
  data: Readable,
  options: { serverVersion: number; createMissingRoles: boolean; target: string; server: string },
): Promise<{ state: DatabaseState | undefined; skipped: Skipped[] }> {
  const state = await readDatabaseState(data);
  const skipped = state
    ? await ensureRoles(psql, maintenance, state, { ...options, create: options.createMissingRoles })
    : [
        {
          path: options.target,
          reason:
            'the backup records no database state (taken by an older tidemark): encoding, locale, settings, privileges and comment are the server defaults',
        },
      ];
  const { sql, vars } = createDatabaseSQL(state, options.serverVersion);
  await psql.query(maintenance, sql, {
    vars: { ...vars, scratch: database },
    doing: `creating a database on ${options.server} to restore "${options.target}" into`,
  });
  return { state, skipped };
}
