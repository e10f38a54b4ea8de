import { fileURLToPath } from 'node:url';
import { TidemarkError } from '../errors.ts';
import { connectionSettings, privateKeyFile } from './connection.ts';
import { MySQLSource } from './mysql/mysql.ts';
import { PostgresSource } from './postgres/postgres.ts';
import type { DatabaseSource, ScratchServer } from './source.ts';
import { timestampColumnsFrom } from './table-stats.ts';

/** What a source or restore target URL names. */
export type SourceLocation =
  | {
      kind: 'database';
      engine: 'postgresql' | 'mysql';
      host: string;
      port: number;
      user: string;
      databases: string[] | 'all';
    }
  | { kind: 'volume'; path: string };

const defaultPorts = { postgresql: 5432, mysql: 3306 } as const;

/**
 * Parses `postgresql://USER@HOST:PORT/DB[,DB2]`, `mysql://USER@HOST:PORT/DB` (`.../` with
 * allDatabases) and `file:///path`. Passwords never come from a URL: one in it is refused, so it
 * cannot end up in a log, a status or a snapshot.
 */
export function parseSourceUrl(url: string, options: { allDatabases?: boolean } = {}): SourceLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TidemarkError('InvalidArgument', `source ${url}: not a URL (postgresql://, mysql:// or file:///)`);
  }
  if (parsed.protocol === 'file:') return { kind: 'volume', path: fileURLToPath(parsed) };
  const engine = (
    { 'postgresql:': 'postgresql', 'postgres:': 'postgresql', 'mysql:': 'mysql', 'mariadb:': 'mysql' } as const
  )[parsed.protocol as 'postgresql:'];
  if (!engine)
    throw new TidemarkError('InvalidArgument', `source ${redact(parsed)}: unknown scheme ${parsed.protocol}`);
  if (parsed.password)
    throw new TidemarkError(
      'InvalidArgument',
      `source ${redact(parsed)}: passwords do not belong in the URL; set ${engine === 'postgresql' ? 'PGPASSWORD' : 'MYSQL_PWD'} or use --password-file`,
    );
  if (!parsed.username)
    throw new TidemarkError('InvalidArgument', `source ${redact(parsed)}: name the user (USER@HOST)`);
  const names = decodeURIComponent(parsed.pathname.replace(/^\//, '')).split(',').filter(Boolean);
  if (options.allDatabases && names.length)
    throw new TidemarkError(
      'InvalidArgument',
      `source ${redact(parsed)}: --all-databases takes a URL without databases (ending in /)`,
    );
  if (!options.allDatabases && !names.length)
    throw new TidemarkError('InvalidArgument', `source ${redact(parsed)}: name a database, or pass --all-databases`);
  return {
    kind: 'database',
    engine,
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : defaultPorts[engine],
    user: decodeURIComponent(parsed.username),
    databases: options.allDatabases ? 'all' : names,
  };
}

function redact(url: URL): string {
  const copy = new URL(url.href);
  copy.password = '';
  return copy.href;
}

/**
 * The database source a location names. Its password comes from `env` (PGPASSWORD or MYSQL_PWD;
 * unset: none is sent, for servers that authenticate by certificate or trust the client), its TLS
 * settings and lock wait timeout from the TIDEMARK_DB_TLS_* and TIDEMARK_LOCK_WAIT_TIMEOUT variables,
 * the timestamp columns whose newest values a backup records from TIDEMARK_TIMESTAMP_COLUMNS.
 */
export function openDatabase(
  location: Extract<SourceLocation, { kind: 'database' }>,
  env: NodeJS.ProcessEnv,
): DatabaseSource & ScratchServer {
  const password = env[location.engine === 'postgresql' ? 'PGPASSWORD' : 'MYSQL_PWD'];
  const { tls, lockWaitTimeoutSeconds } = connectionSettings(env);
  const timestampColumns = timestampColumnsFrom(env);
  if (tls.key) tls.key = privateKeyFile(tls.key);
  const options = {
    host: location.host,
    port: location.port,
    user: location.user,
    ...(password === undefined ? {} : { password }),
    databases: location.databases,
    tls,
    lockWaitTimeoutSeconds,
    ...(timestampColumns ? { timestampColumns } : {}),
  };
  return location.engine === 'postgresql' ? new PostgresSource(options) : new MySQLSource(options);
}
