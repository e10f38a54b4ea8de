import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { DatabaseRestoreOptions, DatabaseRestoreResult, ScriptRole } from '../source.ts';
import { type Psql, summarizeStderr } from './client.ts';
import { CopyCounter } from './copy-counter.ts';
import { pairCopyTags } from './copy-tags.ts';
import { applyDatabaseState, createRestoreDatabase } from './database-state.ts';
import {
  dropAbandonedScratch,
  dropScratchDatabase,
  SCRATCH_LOCK_KEY,
  SCRATCH_PREFIX,
  scratchNames,
} from './scratch.ts';
import { describeUserObjects, userObjects } from './user-objects.ts';

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
  /** The database sessions connect to when not to the target or the scratch database. */
  maintenance: string;
}

/**
 * Restores a plain-format dump into a scratch database, runs the post-restore SQL, and only then puts
 * it in place of the target, in one transaction that renames the target away (mode `replace`, or an
 * empty target in mode `new`) and the scratch database into its place. So a failed, interrupted or
 * killed restore, in either mode, leaves the target exactly as it was, and nobody ever connects to
 * restored data before the post-restore SQL (anonymisation) ran. scratch.ts says how the databases of
 * a killed restore are recognised and dropped by the next one. The database is created with the
 * encoding and locale the backup recorded, and gets its owner, settings, privileges and comment before
 * it takes the target's place (database-state.ts).
 *
 * The rows of each table are those the server reports for the dump's COPY of it (its command tag), so
 * the counts are of the load itself and compare with the backup's, whatever the post-restore SQL
 * changes; counts that cannot be told are a warning, never a failure.
 */
export async function restoreDatabase(
  context: RestoreContext,
  data: Readable,
  options: DatabaseRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const { psql, server } = context;
  const { signal } = options;
  const target = options.database;
  const postRestoreSQL = options.postRestoreSQL?.trim();
  const { token, scratch, replaced } = scratchNames();
  const warnings: string[] = [];
  let connected: Connected = { ...context, serverVersion: 0, maintenance: maintenanceFor(target) };
  let lock: { release(): Promise<void> } | undefined;
  let scratchExists = false;
  const checkpoint = () => {
    if (signal?.aborted) throw interrupted(target, server, signal);
  };
  try {
    validateDatabaseName(target);
    if (postRestoreSQL?.startsWith('\\'))
      throw new TidemarkError('InvalidArgument', 'post-restore SQL must be SQL, not a psql meta-command');
    if (postRestoreSQL && Buffer.byteLength(postRestoreSQL) > 100_000)
      // it travels as one argv entry
      throw new TidemarkError('InvalidArgument', 'post-restore SQL is longer than 100 kB');
    // Every psql session costs a connection (~50 ms), so the first one asks both questions.
    const [version, exists] = await psql.query(
      connected.maintenance,
      `select current_setting('server_version_num'),
              exists (select from pg_catalog.pg_database where datname = :'target')`,
      { vars: { target }, doing: `${server}: cannot connect to database "${connected.maintenance}"` },
    );
    connected = { ...connected, serverVersion: Number(version) };
    if (options.mode === 'new' && exists === 't') await refuseNonEmpty(connected, target);
    warnings.push(...(await dropAbandonedScratch(psql, connected.maintenance, server, connected.serverVersion)));
    checkpoint();
    lock = await psql.lock(
      connected.maintenance,
      SCRATCH_LOCK_KEY,
      { token },
      `holding the lock that marks database "${scratch}" on ${server} as in use`,
    );
    scratchExists = true; // from here on it may exist: a failure drops it (if exists)
    const { state, skipped } = await createRestoreDatabase(psql, connected.maintenance, scratch, data, {
      serverVersion: connected.serverVersion,
      createMissingRoles: options.createMissingRoles ?? false,
      target,
      server,
    });
    checkpoint();

    const blocks = new CopyCounter(); // the table of each COPY block, in the order psql runs them
    const restored = await psql.script(scratch, copyBlocks(data, blocks), signal);
    checkpoint();
    if (restored.code !== 0)
      throw new TidemarkError(
        'Unsupported',
        `restoring into "${target}" on ${server} failed, target left unchanged: ${summarizeStderr(restored.stderr, context.password)}`,
      );
    const counted = pairCopyTags(blocks.blocks(), restored.copied);
    if (counted.problem) warnings.push(`restored row counts of "${target}" unknown: ${counted.problem}`);
    warnings.push(...blocks.issues().map((issue) => `reading the dump of "${target}": ${issue}`));
    if (postRestoreSQL) await runPostRestoreSQL(connected, scratch, target, postRestoreSQL, options.scriptRole, signal);
    checkpoint();
    if (state) skipped.push(...(await applyDatabaseState(psql, scratch, state, target)));
    checkpoint();
    const swapped = await swapIntoPlace(connected, scratch, target, replaced, options.mode);
    scratchExists = false; // it is the target now
    if (swapped) {
      const failure = await dropScratchDatabase(psql, connected.maintenance, replaced, server, connected.serverVersion);
      if (failure)
        warnings.push(
          `the database "${target}" held before was kept as "${replaced}" and could not be dropped (${failure}); the next restore on ${server} drops it`,
        );
    }
    return { objects: counted.objects, skipped, warnings };
  } catch (error) {
    let failure = signal?.aborted && !isInterruption(error) ? interrupted(target, server, signal) : error;
    if (scratchExists) {
      const cleanup = await dropScratchDatabase(psql, connected.maintenance, scratch, server, connected.serverVersion);
      if (cleanup)
        failure = new TidemarkError(
          (failure as TidemarkError).code ?? 'Internal',
          `${(failure as Error).message}; and the scratch database "${scratch}" could not be dropped (${cleanup}): the next restore on ${server} drops it, or drop it by hand`,
          { cause: failure },
        );
    }
    throw failure;
  } finally {
    await lock?.release();
    if (!data.readableEnded) data.destroy();
  }
}

function maintenanceFor(target: string): string {
  return target === 'postgres' ? 'template1' : 'postgres';
}

function interrupted(target: string, server: string, signal: AbortSignal): TidemarkError {
  const why = typeof signal.reason === 'string' ? ` by ${signal.reason}` : '';
  return new TidemarkError(
    'Interrupted',
    `restoring into "${target}" on ${server} was interrupted${why}, target left unchanged`,
  );
}

function isInterruption(error: unknown): boolean {
  return error instanceof TidemarkError && error.code === 'Interrupted';
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
  signal: AbortSignal | undefined,
): Promise<void> {
  if (role && !context.asRole)
    throw new TidemarkError(
      'Internal',
      `post-restore SQL should run as role "${role.user}", but no session as it can be opened`,
    );
  const session = role && context.asRole ? context.asRole(role) : context.psql;
  const as = role ? ` as role "${role.user}"` : '';
  if (role) await scriptGrants(context, scratch, role.user, 'grant');
  const post = await session.command(scratch, sql, signal);
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

/** Mode `new` restores only into a database without a single object a user made (user-objects.ts). */
async function refuseNonEmpty(context: RestoreContext, target: string): Promise<void> {
  const found = await userObjects(context.psql, target, `inspecting database "${target}" on ${context.server}`);
  if (found.length > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `database "${target}" on ${context.server} is not empty (it holds ${describeUserObjects(found)}); restore into a new database or use mode replace`,
    );
}

/**
 * Puts the restored copy in place of the target in one transaction: the target (if any) is renamed to
 * `replaced` and the copy to the target's name, so at every moment the target name holds either the
 * old database or the whole restored one. Renaming needs the target free of sessions: mode `replace`
 * ends them (renaming waits up to 5 s for them to go); in mode `new` a session on the (empty) target
 * fails the restore instead, after the emptiness is checked again (the first check may be old).
 * Returns whether a target was renamed away (to be dropped by the caller).
 */
async function swapIntoPlace(
  context: Connected,
  scratch: string,
  target: string,
  replaced: string,
  mode: DatabaseRestoreOptions['mode'],
): Promise<boolean> {
  const [exists] = await context.psql.query(
    context.maintenance,
    "select exists (select from pg_catalog.pg_database where datname = :'target')",
    { vars: { target }, doing: `looking for database "${target}" on ${context.server}` },
  );
  const vars = { scratch, target, replaced };
  const doing = `putting the restored database in place of "${target}" on ${context.server}`;
  if (exists !== 't') {
    await context.psql.query(context.maintenance, 'alter database :"scratch" rename to :"target"', { vars, doing });
    return false;
  }
  if (mode === 'new') await refuseNonEmpty(context, target);
  const endSessions =
    mode === 'replace'
      ? `select pg_catalog.pg_terminate_backend(pid) from pg_catalog.pg_stat_activity
          where datname = :'target' and pid <> pg_catalog.pg_backend_pid();`
      : '';
  await context.psql.query(
    context.maintenance,
    `${endSessions}
     begin;
     alter database :"target" rename to :"replaced";
     alter database :"scratch" rename to :"target";
     commit;`,
    { vars, doing },
  );
  return true;
}
