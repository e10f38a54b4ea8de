import { spawn } from 'node:child_process';
import { TidemarkError } from '../../errors.ts';
import type { ObjectCount, Skipped } from '../source.ts';
import { namedTimestamp } from '../table-stats.ts';
import {
  clientEnv,
  type PostgresConnection,
  Psql,
  redact,
  runTool,
  summarizeStderr,
  TextTail,
  withBigBuffer,
} from './client.ts';
import { CopyCounter } from './copy-counter.ts';
import { captureDatabaseState, stateHeader } from './database-state.ts';
import { describeLockHolders, isLockTimeout, lockQuery } from './lock-holders.ts';
import { tableColumns } from './table-stats.ts';
import type { PostgresTools } from './tools.ts';

export interface DumpContext {
  tools: PostgresTools;
  connection: PostgresConnection;
  /** Names the source in errors. */
  description: string;
  lockWaitTimeoutSeconds: number;
  /** The timestamp column per table (`db.schema.table` or `schema.table`) named by the policy. */
  timestampColumns?: Readonly<Record<string, string>>;
}

export interface DumpOutcome {
  counts: ObjectCount[];
  skipped: Skipped[];
}

/**
 * One database as plain SQL, lazily: pg_dump starts when iteration does. pg_dump reads everything in
 * one repeatable-read transaction holding only ACCESS SHARE locks, so writers go on; rows are counted,
 * and their statistics recorded (which columns: from the catalog, just before), from the stream
 * itself, hence in the dump's snapshot. When pg_dump fails the iteration throws, so no
 * snapshot is written from a partial dump; when the consumer stops early, pg_dump is ended. The stream
 * starts with the database's own state (database-state.ts), which pg_dump leaves out.
 */
export async function* dumpDatabase(
  context: DumpContext,
  database: string,
  onDone: (outcome: DumpOutcome) => void,
): AsyncGenerator<Buffer> {
  const psql = new Psql(context.tools.psql, context.connection);
  const { state, skipped: lossy } = await captureDatabaseState(psql, database, context.description);
  const header = stateHeader(state);
  const plans = await tableColumns(
    psql,
    database,
    (table) => namedTimestamp(context.timestampColumns, [`${database}.${table}`, table]),
    `${context.description}: reading the keys and timestamp columns of database "${database}"`,
  );
  const args = [
    '--format=plain',
    '--encoding=UTF8', // identifiers in COPY lines then decode as UTF-8, whatever the database's encoding
    '--blobs',
    '--no-password',
    // A table held in ACCESS EXCLUSIVE (a long migration) fails the dump instead of hanging it.
    `--lock-wait-timeout=${context.lockWaitTimeoutSeconds}s`,
  ];
  const { pgDump, stdbuf } = context.tools;
  const child = spawn(...withBigBuffer(stdbuf, 'output', pgDump, args), {
    env: clientEnv(context.connection, database),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr = new TextTail(65536);
  const warnings: string[] = [];
  let partial = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr.add(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('pg_dump: warning: ')) warnings.push(line.slice('pg_dump: '.length));
  });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  const counter = new CopyCounter({ stats: plans });
  try {
    counter.write(header);
    yield header;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      counter.write(chunk);
      yield chunk;
    }
    const { code, error } = await exited;
    if (error) throw new TidemarkError('Unsupported', `cannot run ${pgDump}: ${error.message}`);
    if (code !== 0) throw await dumpFailure(context, database, code, stderr.toString());
    counter.end();
    onDone({
      counts: counter.objects(),
      skipped: [
        ...lossy,
        ...warnings.map((reason) => ({ path: database, reason: `pg_dump ${reason}` })),
        ...counter.issues().map((reason) => ({ path: database, reason: `row counts incomplete: ${reason}` })),
      ],
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}

/** pg_dump's error; when it timed out waiting for a table lock, which table and who holds it. */
async function dumpFailure(
  context: DumpContext,
  database: string,
  code: number | null,
  stderr: string,
): Promise<TidemarkError> {
  const what = `pg_dump of database "${database}" on ${context.description}`;
  const error = summarizeStderr(stderr, context.connection.password);
  if (!isLockTimeout(stderr)) return new TidemarkError('SourceUnavailable', `${what} failed (exit ${code}): ${error}`);
  const holders = (await describeLockHolders(context, database)) ?? `it asked: ${lockQuery(stderr) ?? 'LOCK TABLE'}`;
  return new TidemarkError(
    'SourceUnavailable',
    `${what} waited ${context.lockWaitTimeoutSeconds} s for a table lock and gave up: ${redact(holders, context.connection.password)} (${error}); end that session or raise the lock wait timeout`,
  );
}

/**
 * Roles and tablespaces (`pg_dumpall --globals-only`), role passwords included. Small, so read whole:
 * when the user may not read pg_authid (managed services), the dump is taken again without passwords
 * and that is reported.
 */
export async function* dumpGlobals(
  context: DumpContext,
  onDone: (outcome: DumpOutcome) => void,
): AsyncGenerator<Buffer> {
  const env = clientEnv(context.connection);
  const args = ['--globals-only', '--no-password'];
  let result = await runTool(context.tools.pgDumpAll, args, env);
  const skipped: Skipped[] = [];
  if (result.code !== 0 && /permission denied for (table|relation) pg_authid/.test(result.stderr)) {
    result = await runTool(context.tools.pgDumpAll, [...args, '--no-role-passwords'], env);
    skipped.push({
      path: 'globals',
      reason: `role passwords not dumped: user ${context.connection.user} may not read pg_authid`,
    });
  }
  if (result.code !== 0)
    throw new TidemarkError(
      'SourceUnavailable',
      `pg_dumpall --globals-only on ${context.description} failed (exit ${result.code}): ${summarizeStderr(result.stderr, context.connection.password)}`,
    );
  yield result.stdout;
  onDone({ counts: [], skipped });
}
