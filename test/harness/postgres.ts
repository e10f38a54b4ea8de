import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { runCommand, startProcess, waitUntil } from './process.ts';
import type { TestCertificates } from './tls.ts';
import { repoRoot, systemTool } from './tools.ts';

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Connection URL without the password (pass it through `env`). */
  readonly url: string;
  /** libpq variables for client tools (psql, pg_dump, ...). */
  readonly env: Record<'PGHOST' | 'PGPORT' | 'PGUSER' | 'PGPASSWORD', string>;
  readonly logFile: string;
  /** Runs SQL through psql over TCP with password auth; returns unaligned, tuples-only output. */
  psql(sql: string, db?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Directory name under workDir (several servers in one test); default `postgres`. */
  name?: string;
  /** Server binaries (initdb, postgres) of another major, e.g. testPostgresBin(13); default Debian's. */
  binDir?: string;
  /**
   * Serve TLS with these certificates and let `certUser` (created, without a password) in only over
   * TLS with a client certificate signed by the CA (`hostssl ... cert`).
   */
  tls?: { certificates: TestCertificates; certUser: string };
}

/**
 * Where scripts/install-test-postgres.sh put the servers of other majors: the link in .tools resolved,
 * since `nobody` (the server's user when tests run as root) may not be able to enter the work tree.
 */
export function testPostgresBin(major: 13 | 18): string {
  const dir = join(repoRoot, '.tools', `postgresql-${major}`, 'bin');
  if (!existsSync(join(dir, 'postgres')))
    throw new Error(`PostgreSQL ${major} is not installed: run scripts/install-test-postgres.sh (expected ${dir})`);
  return realpathSync(dir);
}

/** The newest client tools (pg_dump, psql) that install-test-postgres.sh installed. */
export function testPostgresClientBin(): string {
  const dir = join(repoRoot, '.tools', 'postgresql-client-18', 'bin');
  if (!existsSync(join(dir, 'pg_dump')))
    throw new Error(`pg_dump 18 is not installed: run scripts/install-test-postgres.sh (expected ${dir})`);
  return dir;
}

/** Starts a throw-away PostgreSQL cluster in `workDir/postgres`, listening on 127.0.0.1 only. */
export async function startPostgres(workDir: string, options: PostgresOptions = {}): Promise<PostgresServer> {
  const dir = join(workDir, options.name ?? 'postgres');
  const binary = (name: string) => (options.binDir ? join(options.binDir, name) : debianBinary(name));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'run');
  const logFile = join(dir, 'postgres.log');
  await mkdir(socketDir, { recursive: true });

  // PostgreSQL refuses to run as root: then initdb and postgres run as `nobody`, who owns `dir`.
  const nobody = process.getuid?.() === 0 ? await handToNobody(workDir, dir, socketDir) : undefined;
  const command = (tool: string, args: string[]): [string, string[]] =>
    nobody ? [nobody.setpriv, [...nobody.args, binary(tool), ...args]] : [binary(tool), args];

  const password = randomBytes(18).toString('hex');
  const pwFile = join(dir, 'pwfile');
  await writeFile(pwFile, password, { mode: 0o600 });
  if (nobody) await chown(pwFile, nobody.uid, nobody.gid);
  try {
    const initdb = command('initdb', [
      `--pgdata=${dataDir}`,
      '--username=postgres',
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await runCommand(...initdb, { logFile: join(dir, 'initdb.log') });
  } finally {
    await rm(pwFile, { force: true });
  }
  if (options.tls) await configureTls(dataDir, options.tls, nobody);

  const host = '127.0.0.1';
  const port = await freePort();
  const postgres = command('postgres', [
    ...['-D', dataDir, '-h', host, '-p', String(port), '-k', socketDir],
    ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  ]);
  const server = startProcess('postgres', ...postgres, { logFile });

  const env = { PGHOST: host, PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: password };
  const psql = (sql: string, db = 'postgres') =>
    runCommand(debianBinary('psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db], {
      env: { ...process.env, ...env, PGCONNECT_TIMEOUT: '5' },
      logFile: join(dir, 'psql.log'),
      input: sql,
    });
  const stop = () => server.stop('SIGINT'); // fast shutdown; SIGTERM would wait for clients to disconnect
  try {
    await waitUntil('postgres', async () => (await psql('SELECT 1')).trim() === '1', {
      timeoutMs: 30_000,
      process: server,
    });
  } catch (error) {
    await stop();
    throw error;
  }
  if (options.tls) await psql(`create role "${options.tls.certUser}" login superuser`);
  return {
    host,
    port,
    user: 'postgres',
    password,
    url: `postgresql://postgres@${host}:${port}/postgres`,
    env,
    logFile,
    psql,
    stop,
  };
}

/** Server certificate, key and CA in the data directory; certUser only over TLS with a client certificate. */
async function configureTls(
  dataDir: string,
  tls: NonNullable<PostgresOptions['tls']>,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  const files: [string, string][] = [
    [tls.certificates.serverCert, 'server.crt'],
    [tls.certificates.serverKey, 'server.key'],
    [tls.certificates.ca, 'root.crt'],
  ];
  for (const [from, name] of files) {
    await copyFile(from, join(dataDir, name));
    await chmod(join(dataDir, name), 0o600);
    if (owner) await chown(join(dataDir, name), owner.uid, owner.gid);
  }
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\n",
  );
  const hba = join(dataDir, 'pg_hba.conf');
  const user = tls.certUser;
  await writeFile(
    hba,
    `hostssl all ${user} 127.0.0.1/32 cert\nhost all ${user} 127.0.0.1/32 reject\n${await readFile(hba, 'utf8')}`,
  );
}

/** A PostgreSQL binary, preferring the newest /usr/lib/postgresql/<version>/bin (Debian's layout). */
function debianBinary(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return systemTool(
    name,
    'postgresql-15',
    versions.map((version) => join(root, version, 'bin')),
  );
}

/** Gives `dir` to `nobody` and returns how to run a program as that user. */
async function handToNobody(workDir: string, dir: string, socketDir: string) {
  const entry = (await readFile('/etc/passwd', 'utf8')).split('\n').find((line) => line.startsWith('nobody:'));
  const [uid, gid] = (entry?.split(':') ?? []).slice(2, 4).map(Number);
  if (uid === undefined || gid === undefined) throw new Error('postgres: no `nobody` user in /etc/passwd to run as');
  await chmod(workDir, 0o711); // nobody may traverse workDir, not list or change it
  await chown(dir, uid, gid);
  await chown(socketDir, uid, gid);
  const setpriv = systemTool('setpriv', 'util-linux');
  const args = [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'];
  await runCommand(setpriv, [...args, 'test', '-w', dir], { logFile: join(dir, 'initdb.log') }).catch(() => {
    throw new Error(`postgres: nobody (uid ${uid}) cannot write ${dir}; put workDir under os.tmpdir()`);
  });
  return { uid, gid, setpriv, args };
}
