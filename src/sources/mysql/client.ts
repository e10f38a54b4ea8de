import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { TlsSettings } from '../connection.ts';

/**
 * Running the MariaDB/MySQL command-line tools against one server. The password reaches them only
 * through MYSQL_PWD in their environment: never argv (visible in `ps`), never a message.
 */
export interface Connection {
  host: string;
  port: number;
  user: string;
  /** Absent: no password is sent (a server that authenticates by certificate). */
  password?: string;
  tls?: TlsSettings;
}

const toolNames = { dump: ['mariadb-dump', 'mysqldump'], client: ['mariadb', 'mysql'] } as const;
const found = new Map<string, string>();

/** The MariaDB tool of that kind on PATH, or its MySQL name. */
export function findTool(kind: keyof typeof toolNames, path = process.env.PATH ?? ''): string {
  const key = `${kind}\0${path}`;
  const cached = found.get(key);
  if (cached) return cached;
  for (const name of toolNames[kind])
    for (const dir of path.split(delimiter).filter(Boolean)) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        found.set(key, candidate);
        return candidate;
      } catch {
        // not here
      }
    }
  throw new TidemarkError('Unsupported', `neither ${toolNames[kind].join(' nor ')} is on PATH`);
}

const helpTexts = new Map<string, Promise<string>>();

/** A tool's `--help` text, asked once per tool. */
function helpText(tool: string): Promise<string> {
  let text = helpTexts.get(tool);
  if (!text) {
    text = new Promise((resolve) =>
      execFile(tool, ['--no-defaults', '--help'], { maxBuffer: 4 * 1024 * 1024 }, (_error, stdout) =>
        resolve(String(stdout)),
      ),
    );
    helpTexts.set(tool, text);
  }
  return text;
}

/** Whether a dump tool writes users and grants as SQL (`--system=users`: MariaDB 10.5.5 and later, not MySQL). */
export async function dumpsUsers(tool: string): Promise<boolean> {
  return /--system=/.test(await helpText(tool));
}

/** Whether a dump tool dumps the history of system-versioned tables (`--dump-history`: MariaDB 10.11 and later). */
export async function dumpsHistory(tool: string): Promise<boolean> {
  return /--dump-history/.test(await helpText(tool));
}

/**
 * The line of a tool's stderr that says what went wrong: the server's first `ERROR ...` (the mariadb
 * client) or the first line naming an error (mariadb-dump), else the last lines; the password masked.
 */
export function errorLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return (
    lines.find((line) => /^ERROR \d+/.test(line)) ??
    lines.find((line) => /error/i.test(line)) ??
    lines.slice(-3).join(' / ')
  );
}

/** Options every tool takes first: no option files (a stray ~/.my.cnf must not change what is dumped). */
export function connectionArgs(connection: Connection): string[] {
  return [
    '--no-defaults',
    '--protocol=TCP',
    `--host=${connection.host}`,
    `--port=${connection.port}`,
    `--user=${connection.user}`,
    ...tlsArgs(connection.tls ?? {}),
  ];
}

/**
 * PostgreSQL's sslmode in the client's options. `allow`/`prefer` leave the client's default (TLS when
 * the server offers it, for MariaDB 11.4+ clients); the client checks a CA only together with the
 * host name, so `verify-ca` is `verify-full` here.
 */
export function tlsArgs(tls: TlsSettings): string[] {
  if (tls.mode === 'disable') return ['--skip-ssl'];
  const files = [
    ...(tls.ca ? [`--ssl-ca=${tls.ca}`] : []),
    ...(tls.cert ? [`--ssl-cert=${tls.cert}`] : []),
    ...(tls.key ? [`--ssl-key=${tls.key}`] : []),
  ];
  if (tls.mode === 'require') return ['--ssl', '--skip-ssl-verify-server-cert', ...files];
  if (tls.mode === 'verify-ca' || tls.mode === 'verify-full') return ['--ssl', '--ssl-verify-server-cert', ...files];
  return files;
}

function toolEnv(connection: Connection): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('MYSQL_')) env[key] = value;
  if (connection.password !== undefined) env.MYSQL_PWD = connection.password;
  return env;
}

/** A running tool: stdout to read, its stderr's tail with the password masked, and its exit. */
export interface ToolProcess {
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Exit code, or the signal's name; rejects only when the tool could not be started. */
  readonly exited: Promise<number | string>;
  stderr(): string;
  /** The line of stderr that names the error (see `errorLine`). */
  stderrError(): string;
}

const STDERR_KEEP = 16 * 1024;

export function startTool(connection: Connection, tool: string, args: string[]): ToolProcess {
  return launch(connection, tool, args, 'pipe') as ToolProcess;
}

/**
 * Runs the client on a file of SQL, read by the client itself: should this process die, the client still
 * has the whole file and never sees a cut-off last statement (a pipe would end wherever the writer stopped).
 */
export async function runSqlFile(connection: Connection, file: string, args: string[], context: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const tool = launch(connection, findTool('client'), args, handle.fd);
    const code = await tool.exited;
    if (code !== 0)
      throw new TidemarkError(
        'SourceUnavailable',
        `${context}: ${tool.stderrError() || `mariadb exited with ${code}`}`,
      );
  } finally {
    await handle.close();
  }
}

function launch(
  connection: Connection,
  tool: string,
  args: string[],
  stdin: 'pipe' | number,
): Omit<ToolProcess, 'child'> & { child: ChildProcessByStdio<Writable | null, Readable, Readable> } {
  const child = spawn(tool, [...connectionArgs(connection), ...args], {
    env: toolEnv(connection),
    stdio: [stdin, 'pipe', 'pipe'],
  }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEEP);
  });
  if (stdin !== 'pipe') child.stdout.resume(); // output nobody reads must not fill the pipe and stall the client
  child.stdin?.on('error', () => {}); // an early exit is reported through `exited`
  const exited = new Promise<number | string>((resolve, reject) => {
    child.once('error', (error) =>
      reject(new TidemarkError('Unsupported', `cannot run ${tool}: ${error.message}`, { cause: error })),
    );
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  exited.catch(() => {}); // awaited by the caller; never an unhandled rejection meanwhile
  const masked = () => (connection.password ? stderr.replaceAll(connection.password, '***') : stderr);
  return {
    child,
    exited,
    stderr: masked,
    stderrError: () => errorLine(masked()),
  };
}

/**
 * Runs SQL with the client (statements on stdin, so nothing lands in argv) and returns the rows of its
 * last result set, unescaped. A failure throws SourceUnavailable with `context` and the client's error.
 */
export async function runSql(
  connection: Connection,
  sql: string,
  context: string,
  database?: string,
): Promise<string[][]> {
  const tool = startTool(connection, findTool('client'), [
    '--connect-timeout=10',
    '--batch',
    '--skip-column-names',
    '--default-character-set=utf8mb4',
    ...(database === undefined ? [] : [`--database=${database}`]),
  ]);
  let stdout = '';
  tool.child.stdout.setEncoding('utf8');
  tool.child.stdout.on('data', (text: string) => {
    stdout += text;
  });
  tool.child.stdin.end(sql);
  const code = await tool.exited;
  if (code !== 0) throw new TidemarkError('SourceUnavailable', `${context}: ${tool.stderrError() || `exit ${code}`}`);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t').map(unescapeBatch));
}

/** Batch mode writes `\\`, `\t`, `\n` and `\0` for those characters. */
function unescapeBatch(field: string): string {
  return field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', '0': '\0' })[c] ?? c);
}

export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** A string literal that means the same whatever the server's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES). */
export function quoteString(value: string): string {
  return value === '' ? "''" : `CONVERT(X'${Buffer.from(value).toString('hex')}' USING utf8mb4)`;
}
