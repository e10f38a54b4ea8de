import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { type ErrorCode, TidemarkError } from '../../errors.ts';
import type { TlsSettings } from '../connection.ts';
import { CopyTags } from './copy-tags.ts';

export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  /** Reaches client tools only as PGPASSWORD; when absent, libpq's own means apply (PGPASSWORD, ~/.pgpass). */
  password?: string;
  /** sslmode, sslrootcert, sslcert and sslkey; a key must not be readable by others (privateKeyFile). */
  tls?: TlsSettings;
  connectTimeoutSeconds?: number;
}

/**
 * The environment of a client tool connecting to `database`. Everything goes through libpq variables:
 * the password never appears in argv (visible in /proc), and a database name passed as PGDATABASE is
 * never parsed as a connection string, as `-d` would when it holds `=`.
 */
export function clientEnv(connection: PostgresConnection, database?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGUSER: connection.user,
    PGCONNECT_TIMEOUT: String(connection.connectTimeoutSeconds ?? 10),
    PGAPPNAME: 'tidemark',
    PGCLIENTENCODING: 'UTF8',
  };
  if (connection.password !== undefined) env.PGPASSWORD = connection.password;
  const tls = connection.tls ?? {};
  if (tls.mode) env.PGSSLMODE = tls.mode;
  if (tls.ca) env.PGSSLROOTCERT = tls.ca;
  if (tls.cert) env.PGSSLCERT = tls.cert;
  if (tls.key) env.PGSSLKEY = tls.key;
  if (database !== undefined) env.PGDATABASE = database;
  else delete env.PGDATABASE;
  return env;
}

/** Keeps the last `limit` characters of a stream of text (a tool's stderr). */
export class TextTail {
  private text = '';
  constructor(private readonly limit = 16384) {}
  add(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

/**
 * What a tool's stderr says went wrong, with a password that might echo replaced: the first error line
 * (psql stops at the first error with ON_ERROR_STOP; later lines are consequences) with the DETAIL and
 * HINT lines that follow it (pg_dump's `detail: Query was: LOCK TABLE ...` names the table); without an
 * error line, the last lines.
 */
export function summarizeStderr(stderr: string, password: string | undefined): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .filter(Boolean);
  const first = lines.findIndex((line) => /\b(ERROR|FATAL|PANIC|error):/.test(line));
  let chosen: string[];
  if (first === -1) chosen = lines.slice(-3);
  else {
    chosen = [lines[first] as string];
    for (const line of lines.slice(first + 1, first + 4)) {
      if (!/^(?:[\w.-]+: )?(?:DETAIL|HINT|detail|hint):/.test(line)) break;
      chosen.push(line);
    }
  }
  return redact(chosen.join('; ') || 'no error output', password);
}

export function redact(text: string, password: string | undefined): string {
  return password ? text.split(password).join('***') : text;
}

export interface ToolResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a client tool to completion with `input` on stdin (a string, or a stream that is piped and
 * stops being read if the tool exits early). Stdout is kept, dropped (`keepStdout: false`), or handed
 * to `onStdout` chunk by chunk. Never rejects for a non-zero exit: callers word the error.
 */
/**
 * `command args` with a 1 MiB buffer on its `stream` when coreutils' stdbuf is there: pg_dump writes to
 * a pipe and psql reads from one 4 KiB at a time, and each small read or write costs Node far more
 * than it costs them (~0.5 s of CPU per GiB for pg_dump's output).
 */
export function withBigBuffer(
  stdbuf: string | undefined,
  stream: 'input' | 'output',
  command: string,
  args: string[],
): [string, string[]] {
  return stdbuf ? [stdbuf, [stream === 'input' ? '-i' : '-o', '1M', command, ...args]] : [command, args];
}

export function runTool(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input: string | AsyncIterable<Buffer> = '',
  options: { keepStdout?: boolean; onStdout?: (chunk: Buffer) => void; signal?: AbortSignal } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const { keepStdout, onStdout, signal } = options;
    const child = spawn(command, args, {
      env,
      stdio: ['pipe', keepStdout === false && !onStdout ? 'ignore' : 'pipe', 'pipe'],
    });
    const stdin = child.stdin as Writable;
    const stdout: Buffer[] = [];
    const stderr = new TextTail();
    child.stdout?.on('data', onStdout ?? ((chunk: Buffer) => stdout.push(chunk)));
    child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
    stdin.on('error', () => {}); // EPIPE when the tool exits early: its exit status tells why
    let inputError: unknown;
    child.once('error', (error) =>
      reject(new TidemarkError('Unsupported', `cannot run ${command}: ${error.message}`, { cause: error })),
    );
    // Stopping the tool is enough: the server rolls back what its session was doing.
    const stop = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', stop, { once: true });
    child.once('close', (code) => {
      signal?.removeEventListener('abort', stop);
      if (inputError !== undefined) reject(inputError);
      else resolve({ code, stdout: Buffer.concat(stdout), stderr: stderr.toString() });
    });
    if (typeof input === 'string') {
      stdin.end(input);
      return;
    }
    feed(input, stdin, () => child.exitCode !== null || child.signalCode !== null).catch((error: unknown) => {
      inputError = error;
      child.kill('SIGTERM');
    });
  });
}

async function feed(input: AsyncIterable<Buffer>, stdin: Writable, exited: () => boolean): Promise<void> {
  for await (const chunk of input) {
    if (exited() || stdin.destroyed) return;
    if (!stdin.write(chunk))
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off('drain', done);
          stdin.off('close', done);
          resolve();
        };
        stdin.on('drain', done);
        stdin.on('close', done);
      });
  }
  stdin.end();
}

/** A psql session per call: SQL on stdin (never in argv), `-v` variables interpolated by psql itself. */
export class Psql {
  constructor(
    private readonly psql: string,
    private readonly connection: PostgresConnection,
    /** coreutils' stdbuf, when there is one (see script()). */
    private readonly stdbuf?: string,
  ) {}

  /**
   * Runs `sql` in `database` and returns the fields of every result row, in order (unaligned, NUL
   * separated, so any name survives). Refer to variables as :'name' (literal) or :"name" (identifier).
   */
  async query(
    database: string,
    sql: string,
    options: { vars?: Record<string, string>; code?: ErrorCode; doing?: string } = {},
  ): Promise<string[]> {
    const vars = Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['-v', `${name}=${value}`]);
    const args = ['-X', '-q', '-w', '-A', '-t', '-z', '-0', '-v', 'ON_ERROR_STOP=1', ...vars];
    const result = await runTool(this.psql, args, clientEnv(this.connection, database), sql);
    if (result.code !== 0)
      throw new TidemarkError(
        options.code ?? 'SourceUnavailable',
        `${options.doing ?? `querying database "${database}"`}: ${summarizeStderr(result.stderr, this.connection.password)}`,
      );
    const fields = result.stdout.toString('utf8').split('\0');
    fields.pop();
    return fields;
  }

  /**
   * Runs a psql script from a stream with ON_ERROR_STOP (a dump being restored), and returns with the
   * result the row count of every COPY it ran, in order (`copied`). Not in one transaction: restores go
   * into a scratch database that is dropped when they fail (restore.ts), and one transaction makes a
   * large restore markedly slower.
   */
  async script(
    database: string,
    input: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<ToolResult & { copied: number[] }> {
    // `-f -` rather than plain stdin: errors then carry the line number (psql:<stdin>:1234: ERROR: ...).
    // Not `-q`: psql then prints every command's tag, and those of COPY (`COPY 42`) give the row counts.
    const args = ['-X', '-w', '-v', 'ON_ERROR_STOP=1', '-f', '-'];
    const [command, commandArgs] = withBigBuffer(this.stdbuf, 'input', this.psql, args);
    const tags = new CopyTags();
    const result = await runTool(command, commandArgs, clientEnv(this.connection, database), input, {
      onStdout: (chunk) => tags.write(chunk),
      ...(signal ? { signal } : {}),
    });
    tags.end();
    return { ...result, copied: tags.counts };
  }

  /** See holdAdvisoryLock. */
  lock(database: string, key: string, vars: Record<string, string>, doing: string) {
    return holdAdvisoryLock(this.psql, this.connection, database, key, vars, doing);
  }

  /**
   * Runs `sql` with `-c`: sent to the server as one query string (one implicit transaction), with no
   * psql meta-commands (`\!` would run a shell) and no variable interpolation.
   */
  async command(database: string, sql: string, signal?: AbortSignal): Promise<ToolResult> {
    const args = ['-X', '-q', '-w', '-v', 'ON_ERROR_STOP=1', '-c', sql];
    return runTool(this.psql, args, clientEnv(this.connection, database), '', {
      keepStdout: false,
      ...(signal ? { signal } : {}),
    });
  }
}

/**
 * A psql session that holds a session-level advisory lock on `key` (a bigint expression, psql
 * variables allowed) until released, or until this process dies: psql then reads end-of-file and
 * exits, and the server releases the lock with the session. Resolves once the lock is held.
 */
export async function holdAdvisoryLock(
  psql: string,
  connection: PostgresConnection,
  database: string,
  key: string,
  vars: Record<string, string>,
  doing: string,
): Promise<{ release(): Promise<void> }> {
  const args = ['-X', '-q', '-w', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
  for (const [name, value] of Object.entries(vars)) args.push('-v', `${name}=${value}`);
  const child = spawn(psql, args, { env: clientEnv(connection, database), stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = new TextTail();
  child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
  child.stdin.on('error', () => {}); // a psql that exited: its stderr says why
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const locked = new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('locked\n')) resolve();
    });
    child.once('error', (error) => reject(new TidemarkError('Unsupported', `cannot run ${psql}: ${error.message}`)));
    void exited.then(() =>
      reject(
        new TidemarkError('SourceUnavailable', `${doing}: ${summarizeStderr(stderr.toString(), connection.password)}`),
      ),
    );
  });
  child.stdin.write(`select pg_catalog.pg_advisory_lock(${key});\n\\echo locked\n`);
  const release = async () => {
    child.stdin.end();
    await exited;
  };
  try {
    await locked;
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}
