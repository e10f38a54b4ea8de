import { TidemarkError } from '../../errors.ts';
import { DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS } from '../connection.ts';
import type { ObjectCount, Skipped } from '../source.ts';
import { namedTimestamp } from '../table-stats.ts';
import { type Connection, dumpsHistory, findTool, quoteString, runSql, startTool, type ToolProcess } from './client.ts';
import { DumpRowCounter } from './dump-rows.ts';
import { watchLocks } from './lock-watch.ts';
import { tableColumns } from './table-stats.ts';

/**
 * One database as SQL, in one consistent InnoDB snapshot without locking writers out: no
 * `CREATE DATABASE`/`USE`, so it restores under any name (its default character set and collation travel
 * as a leading `ALTER DATABASE`). Routines, triggers and events are included, and the history of
 * system-versioned tables where mariadb-dump can write it; BLOBs are hex so the dump is valid UTF-8.
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
export const FLOAT_LOSSY =
  'FLOAT column: mariadb-dump writes 6 significant digits, so restored values may differ in their last bits';
export const HISTORY_LOST = 'system-versioned table: only its current rows are dumped, not its history';

/**
 * What the dump of a database leaves out or changes, known before it starts (from information_schema):
 * non-transactional tables, FLOAT columns, and history that mariadb-dump cannot write (transaction-precise
 * versioning, or a mariadb-dump without `--dump-history`: then every versioned table).
 */
export async function dumpPlan(connection: Connection, database: string, context: string) {
  const schema = quoteString(database);
  const rows = await runSql(
    connection,
    `SELECT 'database', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${schema}
     UNION ALL SELECT 'nontransactional', t.TABLE_NAME, '', '' FROM information_schema.TABLES t JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE
       WHERE t.TABLE_SCHEMA = ${schema} AND t.TABLE_TYPE <> 'VIEW' AND e.TRANSACTIONS <> 'YES'
     UNION ALL SELECT 'float', c.TABLE_NAME, c.COLUMN_NAME, '' FROM information_schema.COLUMNS c JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
       WHERE c.TABLE_SCHEMA = ${schema} AND t.TABLE_TYPE <> 'VIEW' AND c.DATA_TYPE = 'float'
     UNION ALL SELECT 'versioned', TABLE_NAME, '', '' FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema} AND TABLE_TYPE = 'SYSTEM VERSIONED'
     UNION ALL SELECT 'transaction-precise', TABLE_NAME, '', '' FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = ${schema} AND GENERATION_EXPRESSION = 'ROW START' AND DATA_TYPE = 'bigint'`,
    context,
  );
  const of = (kind: string) => rows.filter(([k]) => k === kind).map(([, a, b]) => [a as string, b as string] as const);
  const settings = rows.find(([kind]) => kind === 'database');
  const withHistory = (await dumpsHistory(findTool('dump'))) && of('transaction-precise').length === 0;
  const skipped: Skipped[] = [
    ...of('nontransactional').map(([table]) => ({ path: table, reason: NOT_TRANSACTIONAL })),
    ...of('float').map(([table, column]) => ({ path: `${table}.${column}`, reason: FLOAT_LOSSY })),
    ...(withHistory ? [] : of('versioned').map(([table]) => ({ path: table, reason: HISTORY_LOST }))),
  ];
  const header = settings ? databaseHeader(settings[1] ?? '', settings[2] ?? '', settings[3] ?? '') : '';
  return { header, withHistory, skipped };
}

/**
 * The dump's first statements: the database's default character set, collation and comment, for the
 * database the dump is replayed into (`ALTER DATABASE` without a name changes the current one). The
 * comment is a literal whatever the server's sql_mode (NO_BACKSLASH_ESCAPES).
 */
export function databaseHeader(charset: string, collation: string, comment: string): string {
  const word = /^\w+$/;
  if (!word.test(charset) || !word.test(collation)) return '';
  return (
    "SET @tidemark_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '';\n" +
    `ALTER DATABASE CHARACTER SET ${charset} COLLATE ${collation} COMMENT ${stringLiteral(comment)};\n` +
    'SET SESSION sql_mode = @tidemark_sql_mode;\n'
  );
}

/** A string literal for a session whose sql_mode is empty (backslash escapes on). */
export function stringLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''").replaceAll('\n', '\\n').replaceAll('\0', '\\0')}'`;
}

/** Where a dump reports what it found, once its stream has been read to the end. */
export interface DumpReport {
  /** The source, for messages. */
  description: string;
  objects: ObjectCount[];
  skipped: Skipped[];
}

/**
 * The dump of one database as a lazy stream: mariadb-dump starts when the stream is first read. Rows are
 * counted, and their statistics recorded (which columns: from information_schema, just before), as the
 * dump flows through, so both belong to the dumped snapshot. A failed dump throws
 * (SourceUnavailable, with mariadb-dump's error) so the backup writes no snapshot; a stream abandoned
 * part-way stops mariadb-dump.
 */
export async function* dumpDatabase(
  connection: Connection,
  database: string,
  objectPrefix: string,
  report: DumpReport,
  lockWaitTimeoutSeconds = DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
  /** The timestamp column per table (`db.table` or `table`) named by the policy. */
  timestampColumns?: Readonly<Record<string, string>>,
): AsyncGenerator<Buffer> {
  const context = `${report.description}: dumping database ${database}`;
  const plan = await dumpPlan(connection, database, context);
  const columns = await tableColumns(
    connection,
    database,
    (table) => namedTimestamp(timestampColumns, [`${database}.${table}`, table]),
    `${context}: reading its keys and timestamp columns`,
  );
  const history = plan.withHistory ? ['--dump-history'] : [];
  const watch = await watchLocks(connection, database, lockWaitTimeoutSeconds);
  const tool = startTool(connection, findTool('dump'), [...DUMP_OPTIONS, ...history, '--', database]);
  const counter = new DumpRowCounter({ stats: columns });
  try {
    yield* readDump(tool, context, (chunk) => counter.push(chunk), plan.header);
  } catch (error) {
    const locked = watch.failure();
    throw locked ? new TidemarkError('SourceUnavailable', `${context}: ${locked}`) : error;
  } finally {
    watch.stop();
  }
  counter.end();
  for (const counted of counter.objects()) report.objects.push({ ...counted, name: objectPrefix + counted.name });
  for (const { path, reason } of plan.skipped) report.skipped.push({ path: objectPrefix + path, reason });
  report.skipped.push(...warnings(tool, database));
}

/** Users, roles and grants (`mariadb-dump --system=users`), for a dump of all databases. */
export async function* dumpGlobals(connection: Connection, report: DumpReport): AsyncGenerator<Buffer> {
  const tool = startTool(connection, findTool('dump'), ['--system=users', '--skip-dump-date']);
  yield* readDump(tool, `${report.description}: dumping users and grants`, () => {});
  report.skipped.push(...warnings(tool, 'globals'));
}

/** The tool's output, after `header` (SQL of our own, not counted); a stream abandoned part-way stops the tool. */
async function* readDump(
  tool: ToolProcess,
  context: string,
  onChunk: (chunk: Buffer) => void,
  header = '',
): AsyncGenerator<Buffer> {
  tool.child.stdin.end();
  let completed = false;
  try {
    if (header) yield Buffer.from(header);
    for await (const chunk of tool.child.stdout as AsyncIterable<Buffer>) {
      onChunk(chunk);
      yield chunk;
    }
    const code = await tool.exited;
    if (code !== 0)
      throw new TidemarkError(
        'SourceUnavailable',
        `${context}: ${tool.stderrError() || `mariadb-dump exited with ${code}`}`,
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
