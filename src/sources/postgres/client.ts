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

/** The lines of a tool's stderr that say what went wrong, with a password that might echo replaced. */
export function summarizeStderr(stderr: string, password: string | undefined): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .filter(Boolean);
  const errors = lines.filter((line) => /\b(ERROR|FATAL|PANIC|error):/.test(line));
  const chosen = (errors.length ? errors : lines).slice(-3).join('; ') || 'no error output';
  return redact(chosen, password);
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
  options: { keepStdout?: boolean; onStdout?: (chunk: Buffer) => void } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const { keepStdout, onStdout } = options;
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
    child.once('close', (code) => {
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
  async script(database: string, input: AsyncIterable<Buffer>): Promise<ToolResult & { copied: number[] }> {
    // `-f -` rather than plain stdin: errors then carry the line number (psql:<stdin>:1234: ERROR: ...).
    // Not `-q`: psql then prints every command's tag, and those of COPY (`COPY 42`) give the row counts.
    const args = ['-X', '-w', '-v', 'ON_ERROR_STOP=1', '-f', '-'];
    const [command, commandArgs] = withBigBuffer(this.stdbuf, 'input', this.psql, args);
    const tags = new CopyTags();
    const result = await runTool(command, commandArgs, clientEnv(this.connection, database), input, {
      onStdout: (chunk) => tags.write(chunk),
    });
    tags.end();
    return { ...result, copied: tags.counts };
  }

  /**
   * Runs `sql` with `-c`: sent to the server as one query string (one implicit transaction), with no
   * psql meta-commands (`\!` would run a shell) and no variable interpolation.
   */
  async command(database: string, sql: string): Promise<ToolResult> {
    const args = ['-X', '-q', '-w', '-v', 'ON_ERROR_STOP=1', '-c', sql];
    return runTool(this.psql, args, clientEnv(this.connection, database), '', { keepStdout: false });
  }
}
