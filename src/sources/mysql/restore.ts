import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { DatabaseRestoreOptions, DatabaseRestoreResult, ObjectCount } from '../source.ts';
import { type Connection, findTool, quoteIdentifier, quoteString, runSql, startTool } from './client.ts';

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

interface TargetState {
  exists: boolean;
  /** Tables, views, routines and events it holds. */
  objects: number;
  charset: string;
  collation: string;
}

/**
 * Restores a dump (as written by `dumpDatabase`) into `options.database`. `new` refuses a target that holds
 * anything, changing nothing; `replace` drops and recreates it. When the replay or the post-restore SQL
 * fails the target is dropped again (and recreated empty if it existed), so nothing is left half-restored.
 */
export async function restoreDatabase(
  connection: Connection,
  description: string,
  data: Readable,
  options: DatabaseRestoreOptions,
): Promise<DatabaseRestoreResult> {
  const { database, mode } = options;
  const context = `${description}: restoring into database ${database}`;
  const target = await targetState(connection, database, context);
  if (mode === 'new' && target.objects > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `${context}: the database is not empty (${target.objects} tables, views, routines or events); restore into a new database, or use mode replace to overwrite it`,
    );
  const name = quoteIdentifier(database);
  const create = `CREATE DATABASE ${name}${target.exists ? ` CHARACTER SET ${target.charset} COLLATE ${target.collation}` : ''}`;
  if (mode === 'replace') await runSql(connection, `DROP DATABASE IF EXISTS ${name}; ${create};`, context);
  else if (!target.exists) await runSql(connection, `${create};`, context);

  try {
    await replay(connection, database, data, context);
    if (options.postRestoreSQL) {
      // As the script's role when given: it needs its own grants on the target database (the DBA's).
      const role = options.scriptRole;
      const as = role ? { ...connection, user: role.user, password: role.password } : connection;
      const post = startTool(as, findTool('client'), [...REPLAY_OPTIONS, `--database=${database}`]);
      post.child.stdin.end(options.postRestoreSQL);
      const code = await post.exited;
      if (code !== 0)
        throw new TidemarkError(
          'InvalidArgument',
          `${context}: post-restore SQL${role ? ` as user ${role.user}` : ''} failed: ${post.stderrTail() || code}`,
        );
    }
  } catch (error) {
    const undo = `DROP DATABASE IF EXISTS ${name};${target.exists ? ` ${create};` : ''}`;
    await runSql(connection, undo, `${context}: cleaning up after a failed restore`).catch((cleanup: unknown) => {
      throw new TidemarkError(
        (error as TidemarkError).code ?? 'Internal',
        `${(error as Error).message}; cleaning up failed too, database ${database} may be half-restored: ${(cleanup as Error).message}`,
        { cause: error },
      );
    });
    throw error;
  }
  return { objects: await countRows(connection, database, context), skipped: [] };
}

async function targetState(connection: Connection, database: string, context: string): Promise<TargetState> {
  const schema = quoteString(database);
  const [row] = await runSql(
    connection,
    `SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${schema}),
      (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema})
      + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${schema})
      + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${schema}),
      (SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${schema}),
      (SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${schema})`,
    context,
  );
  const [exists, objects, charset, collation] = row ?? [];
  return {
    exists: exists === '1',
    objects: Number(objects),
    charset: /^\w+$/.test(charset ?? '') ? (charset as string) : 'utf8mb4',
    collation: /^\w+$/.test(collation ?? '') ? (collation as string) : 'utf8mb4_general_ci',
  };
}

/** Feeds the dump to the client. A stream that fails part-way kills the client before its stdin closes, so it never runs a cut-off statement. */
async function replay(connection: Connection, database: string, data: Readable, context: string): Promise<void> {
  const tool = startTool(connection, findTool('client'), [...REPLAY_OPTIONS, `--database=${database}`]);
  const exitedEarly = tool.exited.then(() => 'exited' as const);
  try {
    for await (const chunk of data) {
      if (
        !tool.child.stdin.write(chunk) &&
        (await Promise.race([once(tool.child.stdin, 'drain'), exitedEarly])) === 'exited'
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
  tool.child.stdin.end();
  const code = await tool.exited;
  if (code !== 0) throw new TidemarkError('SourceUnavailable', `${context}: ${tool.stderrTail() || `exit ${code}`}`);
}

/** Exact `count(*)` of every base table of `database`, by name. */
export async function countRows(connection: Connection, database: string, context: string): Promise<ObjectCount[]> {
  const tables = (
    await runSql(
      connection,
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
      context,
    )
  ).map(([table]) => table as string);
  if (tables.length === 0) return [];
  const query = tables
    .map((table, i) => `SELECT ${i}, COUNT(*) FROM ${quoteIdentifier(database)}.${quoteIdentifier(table)}`)
    .join(' UNION ALL ');
  const counts = new Map((await runSql(connection, `${query};`, context)).map(([i, n]) => [Number(i), Number(n)]));
  return tables.map((name, i) => ({ name, records: counts.get(i) ?? 0 }));
}
