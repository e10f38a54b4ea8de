import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../api/duration.ts';
import { TidemarkError } from '../errors.ts';

/**
 * How a client tool secures its connection, in PostgreSQL's sslmode terms for both engines:
 * `disable` never TLS; `allow`/`prefer` TLS when the server offers it; `require` TLS without checking
 * the server's certificate; `verify-ca` TLS with a certificate signed by the CA; `verify-full` that
 * and the host name in the certificate. MariaDB/MySQL clients cannot check the CA without the host
 * name, so there `verify-ca` checks both, as `verify-full` does.
 */
export const TLS_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export interface TlsSettings {
  mode?: TlsMode;
  /** PEM file of the CA that signed the server's certificate. */
  ca?: string;
  /** PEM files of a client certificate and its private key, for servers that authenticate by certificate. */
  cert?: string;
  key?: string;
}

/** Seconds a dump waits for a table lock held by someone else before it fails (documented default). */
export const DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS = 300;

/**
 * The environment variables that carry connection settings to the agent (the Job sets them from
 * the policy and from mounted Secrets; the CLI from its flags). Passwords come from PGPASSWORD /
 * MYSQL_PWD; when that is unset no password is sent, for servers that ask for none (certificates).
 */
export const CONNECTION_ENV = {
  tlsMode: 'TIDEMARK_DB_TLS_MODE',
  tlsCa: 'TIDEMARK_DB_TLS_CA',
  tlsCert: 'TIDEMARK_DB_TLS_CERT',
  tlsKey: 'TIDEMARK_DB_TLS_KEY',
  lockWaitTimeout: 'TIDEMARK_LOCK_WAIT_TIMEOUT',
} as const;

export interface ConnectionSettings {
  tls: TlsSettings;
  lockWaitTimeoutSeconds: number;
}

/** Reads the connection settings from `env`, refusing values that are not what their variable takes. */
export function connectionSettings(env: NodeJS.ProcessEnv): ConnectionSettings {
  const mode = env[CONNECTION_ENV.tlsMode] || undefined;
  if (mode !== undefined && !(TLS_MODES as readonly string[]).includes(mode))
    throw new TidemarkError('InvalidArgument', `${CONNECTION_ENV.tlsMode} ${mode}: use one of ${TLS_MODES.join(', ')}`);
  const cert = env[CONNECTION_ENV.tlsCert] || undefined;
  const key = env[CONNECTION_ENV.tlsKey] || undefined;
  if ((cert === undefined) !== (key === undefined))
    throw new TidemarkError(
      'InvalidArgument',
      `a client certificate needs both ${CONNECTION_ENV.tlsCert} and ${CONNECTION_ENV.tlsKey}`,
    );
  const tls: TlsSettings = {};
  if (mode) tls.mode = mode as TlsMode;
  if (env[CONNECTION_ENV.tlsCa]) tls.ca = env[CONNECTION_ENV.tlsCa];
  if (cert && key) Object.assign(tls, { cert, key });
  return { tls, lockWaitTimeoutSeconds: lockWaitTimeoutSeconds(env[CONNECTION_ENV.lockWaitTimeout]) };
}

/** `90s`, `5m` (the API's durations) or a plain number of seconds; absent: the default. */
export function lockWaitTimeoutSeconds(text: string | undefined): number {
  if (!text) return DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS;
  const ms = /^[0-9]+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (!(ms >= 1000))
    throw new TidemarkError(
      'InvalidArgument',
      `lock wait timeout ${text}: must be at least one second (e.g. 90s, 5m or 300)`,
    );
  return Math.floor(ms / 1000);
}

/**
 * The client key at a path libpq accepts: it refuses a key readable by group or others unless root
 * owns it, and Kubernetes mounts Secret files group-readable when the pod sets fsGroup. Such a key is
 * copied once into a private directory of the agent's own (mode 0600), removed when the process exits;
 * a private key is used in place.
 */
export function privateKeyFile(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    throw new TidemarkError('InvalidArgument', `client key ${path}: ${(error as Error).message}`);
  }
  if ((mode & 0o077) === 0) return path;
  const directory = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
  // A key must not outlive the command that needed it (a CLI run leaves nothing in /tmp).
  process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
  const copy = join(directory, 'client.key');
  copyFileSync(path, copy);
  chmodSync(copy, 0o600);
  return copy;
}
