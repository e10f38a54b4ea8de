import { TidemarkError } from '../../errors.ts';
import { DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS } from '../connection.ts';
import type { ObjectCount, Skipped } from '../source.ts';
import { type Connection, findTool, quoteString, runSql, startTool, type ToolProcess } from './client.ts';
import { DumpRowCounter } from './dump-rows.ts';
import { watchLocks } from './lock-watch.ts';

/**
 * One database as SQL, in one consistent InnoDB snapshot without locking writers out: no
 * `CREATE DATABASE`/`USE`, so it restores under any name. Routines, triggers and events are included;
 * BLOBs are hex so the dump is valid UTF-8.
 */
export const DUMP_OPTIONS = [
  '--single-transaction',
  '--quick',
  '--skip-lock-tables',
  '--routines',
  '--triggers',
  '--events',
  '--hex-blob',
  '--default-character-set=utf8mb4',
  '--max-allowed-packet=1073741824',
  '--skip-dump-date',
];

export const NOT_TRANSACTIONAL = 'not transactional: dumped, but not consistent with the rest';

/** Where a dump reports what it found, once its stream has been read to the end. */
export interface DumpReport {
  /** The source, for messages. */
  description: string;
  objects: ObjectCount[];
  skipped: Skipped[];
}

/**
 * The dump of one database as a lazy stream: mariadb-dump starts when the stream is first read. Rows are
 * counted as the dump flows through, so the counts belong to the dumped snapshot. A failed dump throws
 * (SourceUnavailable, with mariadb-dump's error) so the backup writes no snapshot; a stream abandoned
 * part-way stops mariadb-dump.
 */
export async function* dumpDatabase(
  connection: Connection,
  database: string,
  objectPrefix: string,
  report: DumpReport,
  lockWaitTimeoutSeconds = DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
): AsyncGenerator<Buffer> {
  const context = `${report.description}: dumping database ${database}`;
  const nonTransactional = await runSql(
    connection,
    'SELECT t.TABLE_NAME FROM information_schema.TABLES t JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE ' +
      `WHERE t.TABLE_SCHEMA = ${quoteString(database)} AND t.TABLE_TYPE = 'BASE TABLE' AND e.TRANSACTIONS <> 'YES' ` +
      'ORDER BY t.TABLE_NAME',
    context,
  );
  const watch = await watchLocks(connection, database, lockWaitTimeoutSeconds);
  const tool = startTool(connection, findTool('dump'), [...DUMP_OPTIONS, '--', database]);
  const counter = new DumpRowCounter();
  try {
    yield* readDump(tool, context, (chunk) => counter.push(chunk));
  } catch (error) {
    const locked = watch.failure();
    throw locked ? new TidemarkError('SourceUnavailable', `${context}: ${locked}`) : error;
  } finally {
    watch.stop();
  }
  counter.end();
  for (const { table, rows } of counter.tables()) report.objects.push({ name: objectPrefix + table, records: rows });
  for (const [table] of nonTransactional)
    report.skipped.push({ path: objectPrefix + table, reason: NOT_TRANSACTIONAL });
  report.skipped.push(...warnings(tool, database));
}

/** Users, roles and grants (`mariadb-dump --system=users`), for a dump of all databases. */
export async function* dumpGlobals(connection: Connection, report: DumpReport): AsyncGenerator<Buffer> {
  const tool = startTool(connection, findTool('dump'), ['--system=users', '--skip-dump-date']);
  yield* readDump(tool, `${report.description}: dumping users and grants`, () => {});
  report.skipped.push(...warnings(tool, 'globals'));
}

async function* readDump(tool: ToolProcess, context: string, onChunk: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  tool.child.stdin.end();
  let completed = false;
  try {
    for await (const chunk of tool.child.stdout as AsyncIterable<Buffer>) {
      onChunk(chunk);
      yield chunk;
    }
    const code = await tool.exited;
    if (code !== 0)
      throw new TidemarkError(
        'SourceUnavailable',
        `${context}: ${tool.stderrTail() || `mariadb-dump exited with ${code}`}`,
      );
    completed = true;
  } finally {
    if (!completed) tool.child.kill('SIGTERM');
  }
}

/** What mariadb-dump wrote to stderr although it succeeded. */
function warnings(tool: ToolProcess, path: string): Skipped[] {
  return tool
    .stderr()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => ({ path, reason: `mariadb-dump warned: ${line}` }));
}
