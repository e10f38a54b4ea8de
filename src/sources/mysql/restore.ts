import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { DatabaseRestoreOptions, DatabaseRestoreResult, ObjectCount } from '../source.ts';
import {
  type Connection,
  findTool,
  quoteIdentifier,
  quoteString,
  runSql,
  runSqlFile,
  startTool,
  type ToolProcess,
} from './client.ts';
import { stringLiteral } from './dump.ts';
import { dropScratch, grantPattern, removeAbandonedScratch, type ScratchLock, takeScratchLock } from './scratch.ts';

/**
 * Client options for replaying SQL: binary mode keeps `\r\n` and NULs inside strings as they are and turns
 * off client commands other than DELIMITER (a dump or a post-restore script cannot run `\!` shell commands).
 */
const REPLAY_OPTIONS = [
  '--batch',
  '--binary-mode',
  '--default-character-set=utf8mb4',
  '--max-allowed-packet=1073741824',
];

/** What a database holds, by kind (`table`, `sequence`, `view`, `procedure`, `function`, `event`, `trigger`). */
interface DatabaseState {
  exists: boolean;
  objects: { kind: string; name: string }[];
  charset: string;
  collation: string;
  comment: string;
}

/**
 * Restores a dump (as written by `dumpDatabase`) into `options.database` through a scratch database:
 * the dump is replayed into `tidemark_restore_<id>`, its rows counted, the post-restore SQL run there,
 * and only then is it swapped into place (see `swap`). Until the swap nobody sees any of it and the
 * target is untouched: a failed, aborted or killed restore leaves the target exactly as it was, in
 * either mode. `new` refuses a target that holds any object, naming them.
 */
export async function restoreDatabase(
  connection: Connection,
  description: string,
  data: Readable,
  options: DatabaseRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const { database, mode, signal } = options;
  const context = `${description}: restoring into database ${database}`;
  const leftovers = await removeAbandonedScratch(connection, context);
  const target = await databaseState(connection, database, context);
  if (mode === 'new' && target.objects.length > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `${context}: the database is not empty, it holds ${describeObjects(target.objects)}; restore into a new database, or use mode replace to overwrite it`,
    );
  const lock = await takeScratchLock(connection, context);
  const scratch = lock.name;
  let swapping = false;
  try {
    const charset = target.exists ? ` CHARACTER SET ${target.charset} COLLATE ${target.collation}` : '';
    await runSql(connection, `CREATE DATABASE ${quoteIdentifier(scratch)}${charset};`, context);
    await replay(connection, scratch, data, context, signal);
    const objects = await countRows(connection, scratch, context);
    if (options.postRestoreSQL) await runPostRestoreSQL(connection, scratch, options, context);
    throwIfAborted(signal, context);
    swapping = true;
    await swap(connection, lock, database, target, mode, context);
    const emptied = await dropScratch(connection, scratch, `${context}: dropping the emptied scratch database`).then(
      () => [],
      (error: Error) => [`${error.message} (the next restore removes it)`],
    );
    return { objects, skipped: [], warnings: [...leftovers, ...emptied] };
  } catch (error) {
    const left = swapping ? 'the swap into the target failed part-way' : 'target left unchanged';
    const failure = new TidemarkError(
      (error as TidemarkError).code ?? 'Internal',
      `${(error as Error).message} (${left})`,
      { cause: error },
    );
    await dropScratch(connection, scratch, `${context}: dropping the scratch database ${scratch}`).catch(
      (cleanup: unknown) => {
        throw new TidemarkError(
          failure.code,
          `${failure.message}; dropping the scratch database ${scratch} failed too (the next restore on this server removes it): ${(cleanup as Error).message}`,
          { cause: error },
        );
      },
    );
    throw failure;
  } finally {
    await lock.release();
  }
}

function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted)
    throw new TidemarkError('Interrupted', `${context}: interrupted by ${String(signal.reason ?? 'an abort')}`);
}

function describeObjects(objects: { kind: string; name: string }[]): string {
  const sorted = [...objects].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  const shown = sorted.slice(0, 10).map(({ kind, name }) => `${kind} ${JSON.stringify(name)}`);
  return `${shown.join(', ')}${objects.length > shown.length ? ` and ${objects.length - shown.length} more` : ''}`;
}

async function databaseState(connection: Connection, database: string, context: string): Promise<DatabaseState> {
  const schema = quoteString(database);
  const rows = await runSql(
    connection,
    `SELECT 'database', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${schema}
     UNION ALL SELECT CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END, TABLE_NAME, '', ''
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema}
     UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME, '', '' FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${schema}
     UNION ALL SELECT 'event', EVENT_NAME, '', '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${schema}
     UNION ALL SELECT 'trigger', TRIGGER_NAME, '', '' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${schema}`,
    context,
  );
  const [, charset, collation, comment] = rows.find(([kind]) => kind === 'database') ?? [];
  const word = /^\w+$/;
  return {
    exists: charset !== undefined,
    objects: rows
      .filter(([kind]) => kind !== 'database')
      .map(([kind, name]) => ({ kind: kind ?? '', name: name ?? '' })),
    charset: word.test(charset ?? '') ? (charset as string) : 'utf8mb4',
    collation: word.test(collation ?? '') ? (collation as string) : 'utf8mb4_general_ci',
    comment: comment ?? '',
  };
}

/**
 * Feeds the dump to the client. A stream that fails part-way, or an abort, kills the client before its
 * stdin closes, so it never runs a cut-off statement.
 */
async function replay(
  connection: Connection,
  database: string,
  data: Readable,
  context: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  throwIfAborted(signal, context);
  const tool = startTool(connection, findTool('client'), [...REPLAY_OPTIONS, `--database=${database}`]);
  const unwatch = stopOnAbort(tool, signal);
  try {
    const exitedEarly = tool.exited.then(() => 'exited' as const);
    try {
      for await (const chunk of data) {
        if (signal?.aborted) break;
        if (
          !tool.child.stdin.write(chunk) &&
          // A write error (EPIPE) means the client is going away: its exit says why.
          (await Promise.race([once(tool.child.stdin, 'drain').catch(() => 'exited' as const), exitedEarly])) ===
            'exited'
        )
          break;
        if (tool.child.exitCode !== null) break;
      }
    } catch (error) {
      tool.child.kill('SIGKILL');
      await tool.exited.catch(() => {});
      throw new TidemarkError('Internal', `${context}: reading the backup failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    // Stopped: the client is on its way out, and its stdin stays open so it never runs a cut-off statement.
    if (!signal?.aborted) tool.child.stdin.end();
    const code = await tool.exited;
    throwIfAborted(signal, context);
    if (code !== 0) throw clientError(tool, context, code);
  } finally {
    unwatch();
  }
}

/**
 * Stops a client when `signal` aborts: SIGINT makes the mariadb client KILL its running query on the
 * server (a killed client alone leaves the query running) and exit; SIGKILL if it lingers.
 */
function stopOnAbort(tool: ToolProcess, signal: AbortSignal | undefined): () => void {
  const stop = () => {
    tool.child.kill('SIGINT');
    const timer = setTimeout(() => tool.child.kill('SIGKILL'), 5000);
    void tool.exited.finally(() => clearTimeout(timer));
  };
  signal?.addEventListener('abort', stop, { once: true });
  return () => signal?.removeEventListener('abort', stop);
}

function clientError(tool: ToolProcess, context: string, code: number | string): TidemarkError {
  return new TidemarkError('SourceUnavailable', `${context}: ${tool.stderrError() || `mariadb exited with ${code}`}`);
}

/**
 * Runs the post-restore SQL on the scratch database, as the script's user when given: that user gets
 * SELECT, INSERT, UPDATE and DELETE on the scratch database for it (revoked when the scratch database
 * is dropped), and nothing else it did not hold before.
 */
async function runPostRestoreSQL(
  connection: Connection,
  scratch: string,
  options: DatabaseRestoreOptions,
  context: string,
): Promise<void> {
  const role = options.scriptRole;
  if (role) {
    const accounts = await runSql(
      connection,
      `SELECT Host FROM mysql.user WHERE User = ${quoteString(role.user)}`,
      context,
    );
    const grants = accounts.map(
      ([host]) =>
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${quoteIdentifier(grantPattern(scratch))}.* TO ${quoteIdentifier(role.user)}@${quoteIdentifier(host ?? '')};`,
    );
    if (grants.length)
      await runSql(connection, grants.join(' '), `${context}: granting user ${role.user} the restored data`);
  }
  const as = role ? { ...connection, user: role.user, password: role.password } : connection;
  const post = startTool(as, findTool('client'), [...REPLAY_OPTIONS, `--database=${scratch}`]);
  const unwatch = stopOnAbort(post, options.signal);
  post.child.stdout.resume(); // what the script SELECTs is not read, and must not fill the pipe
  post.child.stdin.end(options.postRestoreSQL);
  const code = await post.exited.finally(unwatch);
  throwIfAborted(options.signal, context);
  if (code !== 0)
    throw new TidemarkError(
      'InvalidArgument',
      `${context}: post-restore SQL${role ? ` as user ${role.user}` : ''} failed: ${post.stderrError() || code}`,
    );
}

/**
 * Puts the scratch database's content in place of the target, in one client session that reads the
 * whole script from a file (so a dying agent never hands it a cut-off statement): the target's own views, routines, events and triggers are dropped (mode replace),
 * every table of both moves in ONE `RENAME TABLE` (the target's old tables to `<scratch>_replaced`, the
 * restored ones into the target), so no session ever sees a mix of old and new rows; then the restored
 * views, routines, events and triggers are created in the target from their definitions in the scratch
 * database (RENAME TABLE cannot move them across databases), and the old tables are dropped.
 */
async function swap(
  connection: Connection,
  lock: ScratchLock,
  database: string,
  target: DatabaseState,
  mode: DatabaseRestoreOptions['mode'],
  context: string,
): Promise<void> {
  const restored = await databaseState(connection, lock.name, context);
  const definitions = await objectDefinitions(connection, lock.name, restored, context);
  const q = quoteIdentifier;
  const into = q(database);
  const tablesOf = (state: DatabaseState) =>
    state.objects.filter((o) => o.kind === 'table' || o.kind === 'sequence').map((o) => o.name);
  const oldTables = mode === 'replace' ? tablesOf(target) : [];
  const dropStatement: Record<string, string> = {
    trigger: 'DROP TRIGGER',
    view: 'DROP VIEW',
    procedure: 'DROP PROCEDURE',
    function: 'DROP FUNCTION',
    event: 'DROP EVENT',
    package: 'DROP PACKAGE',
  };
  const dropsOf = (state: DatabaseState, db: string) =>
    state.objects
      .filter((o) => dropStatement[o.kind])
      .map((o) => `${dropStatement[o.kind]} IF EXISTS ${q(db)}.${q(o.name)};`);
  const renames = [
    ...oldTables.map((t) => `${into}.${q(t)} TO ${q(lock.replaced)}.${q(t)}`),
    ...tablesOf(restored).map((t) => `${q(lock.name)}.${q(t)} TO ${into}.${q(t)}`),
  ];
  const charset = `CHARACTER SET ${restored.charset} COLLATE ${restored.collation} COMMENT ${stringLiteral(restored.comment)}`;
  const script = [
    `DO GET_LOCK(${quoteString(lock.swapLock)}, 0);`,
    "SET SESSION FOREIGN_KEY_CHECKS = 0, SESSION sql_mode = '';",
    target.exists ? `ALTER DATABASE ${into} ${charset};` : `CREATE DATABASE ${into} ${charset};`,
    ...(oldTables.length ? [`CREATE DATABASE ${q(lock.replaced)};`] : []),
    ...(mode === 'replace' ? dropsOf(target, database) : []),
    ...dropsOf(restored, lock.name).filter((s) => s.startsWith('DROP TRIGGER') || s.startsWith('DROP EVENT')),
    ...(renames.length ? [`RENAME TABLE ${renames.join(', ')};`] : []),
    `USE ${into};`,
    definitions,
    `DROP DATABASE IF EXISTS ${q(lock.replaced)};`,
    '',
  ].join('\n');
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-swap-'));
  try {
    const file = join(dir, 'swap.sql');
    await writeFile(file, script, { mode: 0o600 });
    await runSqlFile(connection, file, REPLAY_OPTIONS, `${context}: swapping the restored database into place`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Views, routines, events and triggers of the scratch database as SQL, from mariadb-dump (no tables, no rows). */
async function objectDefinitions(
  connection: Connection,
  scratch: string,
  restored: DatabaseState,
  context: string,
): Promise<string> {
  const common = ['--skip-comments', '--skip-dump-date', '--default-character-set=utf8mb4', '--no-data'];
  const others = await dumpText(
    connection,
    [...common, '--no-create-info', '--routines', '--events', '--triggers', '--', scratch],
    context,
  );
  const views = restored.objects.filter((o) => o.kind === 'view').map((o) => o.name);
  const viewText = views.length
    ? await dumpText(
        connection,
        [...common, '--skip-add-drop-table', '--skip-triggers', '--', scratch, ...views],
        context,
      )
    : '';
  return `${viewText}\n${others}`;
}

async function dumpText(connection: Connection, args: string[], context: string): Promise<string> {
  const tool = startTool(connection, findTool('dump'), args);
  tool.child.stdin.end();
  const chunks: Buffer[] = [];
  for await (const chunk of tool.child.stdout as AsyncIterable<Buffer>) chunks.push(chunk);
  const code = await tool.exited;
  if (code !== 0)
    throw new TidemarkError('SourceUnavailable', `${context}: reading the restored definitions: ${tool.stderrError()}`);
  return Buffer.concat(chunks).toString('utf8');
}

/** Exact `count(*)` of every table of `database` (with all history rows of system-versioned ones), by name. */
export async function countRows(connection: Connection, database: string, context: string): Promise<ObjectCount[]> {
  const tables = await runSql(
    connection,
    `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)}
     AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`,
    context,
  );
  if (tables.length === 0) return [];
  const query = tables
    .map(
      ([table, type], i) =>
        `SELECT ${i}, COUNT(*) FROM ${quoteIdentifier(database)}.${quoteIdentifier(table ?? '')}${type === 'SYSTEM VERSIONED' ? ' FOR SYSTEM_TIME ALL' : ''}`,
    )
    .join(' UNION ALL ');
  const counts = new Map((await runSql(connection, `${query};`, context)).map(([i, n]) => [Number(i), Number(n)]));
  return tables.map(([name], i) => ({ name: name ?? '', records: counts.get(i) ?? 0 }));
}
