import { TidemarkError } from '../../errors.ts';
import { TIMESTAMP_COLUMNS_ENV } from '../../sources/table-stats.ts';

/** Where the agent writes its result (a Job sets /dev/termination-log); unset: stdout. */
export const RESULT_FILE_ENV = 'TIDEMARK_RESULT_FILE';

/**
 * The repository a task works on: its URL (no credentials in it), its passphrase, and the immutability
 * period inside which no snapshot is forgotten. Provider credentials come as the storage drivers' own
 * variables (envFrom the credentials Secret).
 */
export const REPOSITORY_ENV = {
  url: 'TIDEMARK_REPO',
  key: 'TIDEMARK_REPO_KEY',
  immutability: 'TIDEMARK_REPO_IMMUTABILITY',
} as const;

/** A second repository (replicate's target); its provider credentials come with this prefix, so two S3 repositories need not share a key pair. */
export const REPLICA_ENV = {
  url: 'TIDEMARK_REPLICA_REPO',
  key: 'TIDEMARK_REPLICA_KEY',
  credentialsPrefix: 'REPLICA_',
} as const;

/**
 * What a backup reads: a password-free URL (`postgresql://user@host:port/db`, `mysql://...`,
 * `file:///data`; the password comes as PGPASSWORD / MYSQL_PWD), whether all databases, and a volume's
 * excludes (a JSON array of globs).
 */
export const SOURCE_ENV = {
  url: 'TIDEMARK_SOURCE',
  allDatabases: 'TIDEMARK_ALL_DATABASES',
  excludes: 'TIDEMARK_EXCLUDES',
  /** Databases: JSON object, table → the timestamp column whose newest value backups record and audits compare. */
  timestampColumns: TIMESTAMP_COLUMNS_ENV,
} as const;

/** Where a restore writes: a password-free database URL naming one database, or `file:///data`. */
export const TARGET_ENV = 'TIDEMARK_TARGET';

export function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new TidemarkError('InvalidArgument', `${name} is not set`);
  return value;
}

/** A variable that takes one of a few values, `fallback` when unset. */
export function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const value = env[name] ?? fallback;
  if (!(values as readonly string[]).includes(value))
    throw new TidemarkError('InvalidArgument', `${name} ${value}: expected one of ${values.join(', ')}`);
  return value as T;
}
