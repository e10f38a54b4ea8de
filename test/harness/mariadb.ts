import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { runCommand, startProcess, waitUntil } from './process.ts';
import type { TestCertificates } from './tls.ts';
import { systemTool } from './tools.ts';

export interface MariaDBServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Client variables for mariadb, mariadb-dump, ... (the user is passed with `-u`). */
  readonly env: Record<'MYSQL_HOST' | 'MYSQL_TCP_PORT' | 'MYSQL_PWD', string>;
  readonly logFile: string;
  /** Runs SQL through the mariadb client over TCP with the password; returns tab-separated rows. */
  sql(query: string, db?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface MariaDBOptions {
  /** Directory name under workDir (several servers in one test); default `mariadb`. */
  name?: string;
  /** Serve TLS with these certificates; `certUser` (no password, REQUIRE X509) logs in only with a client certificate. */
  tls?: { certificates: TestCertificates; certUser: string };
}

/** Starts a throw-away MariaDB server in `workDir/mariadb`, listening on 127.0.0.1 only. */
export async function startMariaDB(workDir: string, options: MariaDBOptions = {}): Promise<MariaDBServer> {
  const dir = join(workDir, options.name ?? 'mariadb');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'mariadbd.log');
  await mkdir(dir, { recursive: true });
  // mariadbd refuses to run as root unless told to; the data stays inside workDir either way.
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const common = [
    '--no-defaults',
    ...asRoot,
    `--datadir=${dataDir}`,
    '--skip-name-resolve',
    '--innodb-log-file-size=16M',
  ];

  await runCommand(systemTool('mariadb-install-db', 'mariadb-server'), [...common, '--skip-test-db'], {
    logFile: join(dir, 'install-db.log'),
  });

  // root@localhost keeps socket auth; TCP clients from 127.0.0.1 log in as root with the password.
  const password = randomBytes(18).toString('hex');
  const initFile = join(dir, 'init.sql');
  await writeFile(
    initFile,
    `CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '${password}';\n` +
      `GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n` +
      (options.tls
        ? `CREATE USER '${options.tls.certUser}'@'127.0.0.1' REQUIRE X509;\n` +
          `GRANT ALL PRIVILEGES ON *.* TO '${options.tls.certUser}'@'127.0.0.1';\n`
        : ''),
    { mode: 0o600 },
  );

  const host = '127.0.0.1';
  const port = await freePort();
  const server = startProcess(
    'mariadbd',
    systemTool('mariadbd', 'mariadb-server'),
    [
      ...common,
      `--bind-address=${host}`,
      `--port=${port}`,
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadbd.pid')}`,
      `--init-file=${initFile}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      ...(options.tls
        ? [
            `--ssl-ca=${options.tls.certificates.ca}`,
            `--ssl-cert=${options.tls.certificates.serverCert}`,
            `--ssl-key=${options.tls.certificates.serverKey}`,
          ]
        : []),
    ],
    { logFile },
  );

  const env = { MYSQL_HOST: host, MYSQL_TCP_PORT: String(port), MYSQL_PWD: password };
  const sql = (query: string, db?: string) =>
    runCommand(
      systemTool('mariadb', 'mariadb-client'),
      ['--no-defaults', '--protocol=TCP', '--user=root', '--batch', '--skip-column-names', ...(db ? [db] : [])],
      { env: { ...process.env, ...env }, logFile: join(dir, 'client.log'), input: query },
    );
  try {
    await waitUntil('mariadbd', async () => (await sql('SELECT 1')).trim() === '1', {
      timeoutMs: 60_000,
      process: server,
    });
  } catch (error) {
    await server.stop();
    throw error;
  } finally {
    await rm(initFile, { force: true });
  }
  return { host, port, user: 'root', password, env, logFile, sql, stop: () => server.stop() };
}
