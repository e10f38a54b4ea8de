import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { DatabaseRestoreOptions, DatabaseRestoreResult, ScriptRole } from '../source.ts';
import { type Psql, summarizeStderr } from './client.ts';
import { CopyCounter } from './copy-counter.ts';
import { pairCopyTags } from './copy-tags.ts';
import { applyDatabaseState, createRestoreDatabase } from './database-state.ts';
import { countRelations } from './row-counts.ts';

export interface RestoreContext {
  psql: Psql;
  password: string | undefined;
  /** Names the target server in errors. */
  server: string;
  /** A session on the same server as another role (the one post-restore SQL runs as). */
  asRole?: (role: ScriptRole) => Psql;
}

/** The context once connected: the server's version decides how databases are dropped. */
interface Connected extends RestoreContext {
  serverVersion: number;
}

/** Databases holding a restore in progress; one left behind by a killed agent may be dropped. */
export const SCRATCH_PREFIX = 'tidemark_restore_';

/**
 * Restores a plain-format dump into a scratch database, runs the post-restore SQL, and only then puts
 * it in place of the target (dropping the target first with mode `replace`). So a failed restore, in
 * either mode, leaves the target exactly as it was, and nobody ever connects to restored data before the
 * post-restore SQL (anonymisation) ran. The rows of each table are those the server reports for the
 * dump's COPY of it (its command tag), so the counts are of the load itself and compare with the
 * backup's, whatever the post-restore SQL changes. The database is created with the encoding and locale
 * the backup recorded, and gets its owner, settings, privileges and comment before it takes the target's
 * place (database-state.ts).
 */
export async function restoreDatabase(
  context: RestoreContext,
  data: Readable,
  options: DatabaseRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const { psql, server } = context;
  const target = options.database;
  const postRestoreSQL = options.postRestoreSQL?.trim();
  const maintenance = target === 'postgres' ? 'template1' : 'postgres';
  const scratch = `${SCRATCH_PREFIX}${randomBytes(6).toString('hex')}`;
  let connected: Connected = { ...context, serverVersion: 0 };
  let created = false;
  try {
    validateDatabaseName(target);
    if (postRestoreSQL?.startsWith('\\'))
      throw new TidemarkError('InvalidArgument', 'post-restore SQL must be SQL, not a psql meta-command');
    if (postRestoreSQL && Buffer.byteLength(postRestoreSQL) > 100_000)
      // it travels as one argv entry
      throw new TidemarkError('InvalidArgument', 'post-restore SQL is longer than 100 kB');
    // Every psql session costs a connection (~50 ms), so the first one asks both questions.
    const [version, exists] = await psql.query(
      maintenance,
      `select current_setting('server_version_num'),
              exists (select from pg_catalog.pg_database where datname = :'target')`,
      { vars: { target }, doing: `${server}: cannot connect to database "${maintenance}"` },
    );
    connected = { ...context, serverVersion: Number(version) };
    if (options.mode === 'new' && exists === 't') await refuseNonEmpty(connected, target);
    const { state, skipped } = await createRestoreDatabase(psql, maintenance, scratch, data, {
      serverVersion: connected.serverVersion,
      createMissingRoles: options.createMissingRoles ?? false,
      target,
      server,
    });
    created = true;

    const blocks = new CopyCounter(); // the table of each COPY block, in the order psql runs them
    const restored = await psql.script(scratch, copyBlocks(data, blocks));
    if (restored.code !== 0)
      throw new TidemarkError(
        'Unsupported',
        `restoring into "${target}" on ${server} failed, target left unchanged: ${summarizeStderr(restored.stderr, context.password)}`,
      );
    const tables = blocks.objects().map((table) => table.name);
    const objects = pairCopyTags(tables, restored.copied, `restoring "${target}" on ${server}, target left unchanged`);
    if (postRestoreSQL) await runPostRestoreSQL(connected, scratch, target, postRestoreSQL, options.scriptRole);
    if (state) skipped.push(...(await applyDatabaseState(psql, scratch, state, target)));
    await dropTarget(connected, maintenance, target, options.mode);
    created = false; // the target is gone: from here on the scratch database holds the only copy
    await renameScratch(connected, maintenance, scratch, target);
    return { objects, skipped };
  } catch (error) {
    if (created) await dropScratch(connected, maintenance, scratch);
    throw error;
  } finally {
    if (!data.readableEnded) data.destroy();
  }
}

/**
 * Runs the post-restore SQL on the scratch database: as the restoring user, or connected as
 * `role`, which gets for the script's duration what anonymising data needs and no more (CONNECT and
 * TEMPORARY on the database; USAGE on its schemas; SELECT, INSERT, UPDATE, DELETE, TRUNCATE on its
 * tables and USAGE, SELECT, UPDATE on its sequences), revoked again before the copy takes the
 * target's place. The role itself must exist on the server; whatever else it may do is its own.
 */
async function runPostRestoreSQL(
  context: Connected,
  scratch: string,
  target: string,
  sql: string,
  role: ScriptRole | undefined,
): Promise<void> {
  if (role && !context.asRole)
    throw new TidemarkError(
      'Internal',
      `post-restore SQL should run as role "${role.user}", but no session as it can be opened`,
    );
  const session = role && context.asRole ? context.asRole(role) : context.psql;
  const as = role ? ` as role "${role.user}"` : '';
  if (role) await scriptGrants(context, scratch, role.user, 'grant');
  const post = await session.command(scratch, sql);
  if (post.code !== 0)
    throw new TidemarkError(
      'InvalidArgument',
      `post-restore SQL${as} failed on the restored copy of "${target}", target left unchanged: ${summarizeStderr(post.stderr, role?.password ?? context.password)}`,
    );
  if (role) await scriptGrants(context, scratch, role.user, 'revoke');
}

async function scriptGrants(context: Connected, scratch: string, role: string, verb: 'grant' | 'revoke') {
  const to = verb === 'grant' ? 'to' : 'from';
  // \gexec runs each generated statement; format(%I) quotes every schema name.
  const sql = `${verb} connect, temporary on database :"scratch" ${to} :"role";
    select format('${verb} usage on schema %1$I ${to} %2$I;
                   ${verb} select, insert, update, delete, truncate on all tables in schema %1$I ${to} %2$I;
                   ${verb} usage, select, update on all sequences in schema %1$I ${to} %2$I', nspname, :'role')
      from pg_catalog.pg_namespace
     where nspname <> 'information_schema' and nspname not like 'pg\\_%'
    \\gexec`;
  await context.psql.query(scratch, sql, {
    vars: { scratch, role },
    doing: `${verb === 'grant' ? 'granting' : 'revoking'} role "${role}" the post-restore script's privileges on the restored copy on ${context.server}`,
  });
}

async function* copyBlocks(data: Readable, blocks: CopyCounter): AsyncGenerator<Buffer> {
  for await (const chunk of data as AsyncIterable<Buffer>) {
    blocks.write(chunk);
    yield chunk;
  }
  blocks.end();
}

function validateDatabaseName(name: string): void {
  if (!name || name.includes('\0') || Buffer.byteLength(name) > 63)
    throw new TidemarkError('InvalidArgument', `"${name}" is not a PostgreSQL database name (1 to 63 bytes)`);
  if (name.startsWith(SCRATCH_PREFIX))
    throw new TidemarkError('InvalidArgument', `database names starting with ${SCRATCH_PREFIX} are tidemark's own`);
}

async function targetExists(context: RestoreContext, maintenance: string, target: string): Promise<boolean> {
  const rows = await context.psql.query(maintenance, "select 1 from pg_catalog.pg_database where datname = :'target'", {
    vars: { target },
    doing: `looking for database "${target}" on ${context.server}`,
  });
  return rows.length > 0;
}

async function refuseNonEmpty(context: RestoreContext, target: string): Promise<void> {
  const relations = await countRelations(context.psql, target);
  if (relations > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `database "${target}" on ${context.server} is not empty (${relations} tables, views or sequences); restore into a new database or use mode replace`,
    );
}

/** Drops the target, refusing a non-empty one again in mode `new` (its check may be old by now). */
async function dropTarget(
  context: Connected,
  maintenance: string,
  target: string,
  mode: DatabaseRestoreOptions['mode'],
): Promise<void> {
  if (mode === 'new') {
    if (!(await targetExists(context, maintenance, target))) return;
    await refuseNonEmpty(context, target);
  }
  // Only mode `replace` ends other sessions; in mode `new` a session on the empty target fails the drop.
  const drop =
    mode === 'new'
      ? 'drop database if exists :"target"'
      : context.serverVersion >= 130000
        ? 'drop database if exists :"target" with (force)'
        : `select pg_catalog.pg_terminate_backend(pid) from pg_catalog.pg_stat_activity where datname = :'target';
           drop database if exists :"target"`;
  await context.psql.query(maintenance, drop, {
    vars: { target },
    doing: `dropping database "${target}" on ${context.server}`,
  });
}

async function renameScratch(context: Connected, maintenance: string, scratch: string, target: string) {
  try {
    await context.psql.query(maintenance, 'alter database :"scratch" rename to :"target"', {
      vars: { scratch, target },
      doing: `renaming the restored database to "${target}" on ${context.server}`,
    });
  } catch (error) {
    throw new TidemarkError('Internal', `${(error as Error).message}; the restored data is in database "${scratch}"`, {
      cause: error,
    });
  }
}

async function dropScratch(context: Connected, maintenance: string, scratch: string): Promise<void> {
  const force = context.serverVersion >= 130000 ? ' with (force)' : '';
  await context.psql
    .query(maintenance, `drop database if exists :"scratch"${force}`, { vars: { scratch } })
    .catch(() => undefined); // the restore's own error is the one to report
}
