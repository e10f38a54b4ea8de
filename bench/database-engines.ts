// The database servers bench/database.ts measures Tidemark against: how each one starts, fills a
// database of a given size, dumps and loads it with its own client tools (the floor), and settles
// between steps. Everything else (steps, repetitions, report) is shared in bench/database.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startMariaDB } from '../test/harness/mariadb.ts';
import { startPostgres } from '../test/harness/postgres.ts';
import { systemTool } from '../test/harness/tools.ts';
import { run } from './measure.ts';

const MiB = 1024 ** 2;

export interface BenchServer {
  /** The server's own version string, e.g. "PostgreSQL 15.14 (Debian 15.14-0+deb12u1)". */
  version: string;
  /** One sentence on how the server runs, for the report. */
  setup: string;
  /** Environment of the floor's shell commands (connection and password). */
  clientEnv: Record<string, string>;
  /** Environment of Tidemark's commands (the password only). */
  tidemarkEnv: Record<string, string>;
  url(db: string): string;
  sql(query: string, db?: string): Promise<string>;
  createDatabase(db: string): Promise<void>;
  dropDatabase(db: string): Promise<void>;
  /** Fills `db` to about `targetBytes` on disk (or at `scale` when given); describes what it made. */
  populate(db: string, targetBytes: number, scale?: number): Promise<{ bytes: number; description: string }>;
  /** Row counts that a correct restore reproduces, as one comparable string. */
  rows(db: string): Promise<string>;
  /** Written data to disk before a step, so no step pays for the writes of the one before. */
  settle(): Promise<void>;
  /** CPU seconds the server (and its reaped children) used so far. */
  cpuSeconds(): number;
  /** Shell: the floor's dump of `db` as plain SQL on stdout. */
  dump(db: string): string;
  /** Shell: the floor's load of plain SQL from stdin into the existing `db`. */
  load(db: string): string;
  stop(): Promise<void>;
}

export interface Engine {
  /** The npm script suffix and the BENCHMARKS.md section name. */
  name: 'postgres' | 'mariadb';
  title: string;
  dumpTool: string;
  loadTool: string;
  /** What the dump adds beyond plain SQL, and how Tidemark's own dump differs, for the report. */
  dumpNote: string;
  restoreNote: string;
  /** How `settle` writes the server's dirty data out, for the report. */
  settleNote: string;
  start(workDir: string, logFile: string): Promise<BenchServer>;
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** CPU seconds of a server process, its live children and its reaped children (exited backends). */
function processTreeCpuSeconds(pid: number): number {
  const hz = 100; // USER_HZ
  const fields = (p: string) => {
    const text = readFileSync(`/proc/${p}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' '); // fields from state (3rd) on
  };
  const own = fields(String(pid));
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]); // utime stime cutime cstime
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || entry === String(pid)) continue;
    try {
      const f = fields(entry);
      if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / hz;
}

/**
 * Fills to about `targetBytes`: a first guess of the scale from `bytesPerScale`, corrected once when
 * the result is more than 8% off (unless the scale was given).
 */
async function fillToSize(
  targetBytes: number,
  bytesPerScale: number,
  scale: number | undefined,
  fill: (scale: number) => Promise<number>,
): Promise<{ scale: number; bytes: number }> {
  let s = scale ?? Math.max(1, Math.round(targetBytes / bytesPerScale));
  let bytes = await fill(s);
  if (scale === undefined && Math.abs(bytes - targetBytes) / targetBytes > 0.08) {
    s = Math.max(1, Math.round((s * targetBytes) / bytes));
    bytes = await fill(s);
  }
  return { scale: s, bytes };
}

/** A PostgreSQL client binary from Debian's /usr/lib/postgresql/<newest>/bin. */
function pgBinary(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return systemTool(
    name,
    'postgresql-15',
    versions.map((v) => join(root, v, 'bin')),
  );
}

export const postgres: Engine = {
  name: 'postgres',
  title: 'PostgreSQL',
  dumpTool: 'pg_dump',
  loadTool: 'psql',
  dumpNote:
    'Both dump plain SQL (`pg_dump -Fp`); Tidemark additionally passes `--encoding=UTF8 --blobs --lock-wait-timeout` and counts the rows of every COPY block.',
  restoreNote:
    'Tidemark restore creates a scratch database, runs the dump through `psql` (not in one transaction: a failed restore drops the scratch database), takes the row count of each table from the COPY command tag the server returns, and renames it — all timed.',
  settleNote: '`CHECKPOINT`',
  async start(workDir, logFile) {
    const pg = await startPostgres(workDir);
    const pid = () => Number(readFileSync(join(workDir, 'postgres', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const sql = (query: string, db?: string) => pg.psql(query, db);
    return {
      version: (await sql('select version()')).trim().replace(/ on \S+-linux-gnu,.*$/, ''),
      setup:
        'a throw-away cluster from test/harness/postgres.ts on 127.0.0.1 (TCP, scram-sha-256; fsync, synchronous_commit and full_page_writes off), same machine as the clients',
      clientEnv: { ...pg.env },
      tidemarkEnv: { PGPASSWORD: pg.password },
      url: (db) => `postgresql://${pg.user}@${pg.host}:${pg.port}/${db}`,
      sql,
      createDatabase: async (db) => void (await sql(`create database ${db}`)),
      dropDatabase: async (db) => void (await sql(`drop database if exists ${db}`)),
      async populate(db, targetBytes, scale) {
        // pgbench tables, server-side generated (-I dtGvp: drop, create, generate, vacuum, keys).
        const made = await fillToSize(targetBytes, 15.6 * MiB, scale, async (s) => {
          await run(
            { command: pgBinary('pgbench'), args: ['-i', '-q', '-I', 'dtGvp', '-s', String(s), db], env: pg.env },
            logFile,
          );
          return Number((await sql(`select pg_database_size('${db}')`)).trim());
        });
        return {
          bytes: made.bytes,
          description: `\`pgbench -i -I dtGvp -s ${made.scale}\`, ${(made.bytes / MiB).toFixed(1)} MiB by \`pg_database_size\``,
        };
      },
      rows: async (db) =>
        `${(await sql('select count(*) from pgbench_accounts', db)).trim()}/${(await sql('select count(*) from pgbench_branches', db)).trim()}`,
      settle: async () => {
        await sql('checkpoint');
        await run({ command: 'sync', args: [] }, logFile);
      },
      cpuSeconds: () => processTreeCpuSeconds(pid()),
      dump: (db) => `${q(pgBinary('pg_dump'))} -Fp ${db}`,
      load: (db) => `${q(pgBinary('psql'))} -X -q -v ON_ERROR_STOP=1 -d ${db} > /dev/null`,
      stop: () => pg.stop(),
    };
  },
};

/** Rows of `accounts` per scale unit, as pgbench's. */
const ACCOUNTS_PER_SCALE = 100_000;

export const mariadb: Engine = {
  name: 'mariadb',
  title: 'MariaDB',
  dumpTool: 'mariadb-dump',
  loadTool: 'mariadb',
  dumpNote:
    'Both dump plain SQL with `--single-transaction`; Tidemark additionally passes `--quick --skip-lock-tables --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --max-allowed-packet=1G --skip-dump-date` and counts the rows of every INSERT.',
  restoreNote:
    'Tidemark restore creates a scratch database, replays the dump through `mariadb --binary-mode`, counts the rows of each table and swaps the tables into the target with one `RENAME TABLE` — all timed.',
  settleNote: '`FLUSH TABLES`',
  async start(workDir, logFile) {
    const db = await startMariaDB(workDir);
    const pid = () => Number(readFileSync(join(workDir, 'mariadb', 'mariadbd.pid'), 'utf8').trim());
    const client = q(systemTool('mariadb', 'mariadb-client'));
    const sql = (query: string, database?: string) => db.sql(query, database);
    /** InnoDB's file-per-table tablespaces of `database`: what it takes on disk. */
    const diskSize = async (database: string) => {
      const dir = join(workDir, 'mariadb', 'data', database);
      let bytes = 0;
      for (const name of readdirSync(dir)) if (name.endsWith('.ibd')) bytes += (await stat(join(dir, name))).size;
      return bytes;
    };
    return {
      version: `MariaDB ${(await sql('SELECT VERSION()')).trim()}`,
      setup:
        'a throw-away server from test/harness/mariadb.ts on 127.0.0.1 (TCP, password; innodb_flush_log_at_trx_commit=0, no doublewrite), same machine as the clients',
      clientEnv: { ...db.env },
      tidemarkEnv: { MYSQL_PWD: db.password },
      url: (database) => `mysql://${db.user}@${db.host}:${db.port}/${database}`,
      sql,
      createDatabase: async (database) => void (await sql(`CREATE DATABASE ${database}`)),
      dropDatabase: async (database) => void (await sql(`DROP DATABASE IF EXISTS ${database}`)),
      async populate(database, targetBytes, scale) {
        // pgbench's shape (accounts and branches), with a filler that is text, not blanks (CHAR
        // blanks vanish in a MariaDB dump), generated server-side from the Sequence engine.
        const made = await fillToSize(targetBytes, 24 * MiB, scale, async (s) => {
          await sql(
            `DROP TABLE IF EXISTS accounts, branches;
             CREATE TABLE branches (bid INT PRIMARY KEY, bbalance INT NOT NULL, filler CHAR(88)) ENGINE=InnoDB;
             CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT NOT NULL, abalance INT NOT NULL, filler VARCHAR(84)) ENGINE=InnoDB;
             INSERT INTO branches SELECT seq, 0, NULL FROM seq_1_to_${s};`,
            database,
          );
          for (let from = 0; from < s * ACCOUNTS_PER_SCALE; from += 500_000) {
            const to = Math.min(s * ACCOUNTS_PER_SCALE, from + 500_000);
            await sql(
              `INSERT INTO accounts SELECT seq, 1 + (seq - 1) DIV ${ACCOUNTS_PER_SCALE}, 0, CONCAT('account ', seq, ' of branch ', 1 + (seq - 1) DIV ${ACCOUNTS_PER_SCALE}, ' ', MD5(seq)) FROM seq_${from + 1}_to_${to};`,
              database,
            );
          }
          return diskSize(database);
        });
        return {
          bytes: made.bytes,
          description: `pgbench's shape at scale ${made.scale} (${made.scale * ACCOUNTS_PER_SCALE} accounts with a text filler of ~60 bytes, ${made.scale} branches; InnoDB), ${(made.bytes / MiB).toFixed(1)} MiB of tablespace files`,
        };
      },
      rows: async (database) =>
        `${(await sql('SELECT COUNT(*) FROM accounts', database)).trim()}/${(await sql('SELECT COUNT(*) FROM branches', database)).trim()}`,
      settle: async () => {
        await sql('FLUSH TABLES');
        await run({ command: 'sync', args: [] }, logFile);
      },
      cpuSeconds: () => processTreeCpuSeconds(pid()),
      dump: (database) =>
        `${q(systemTool('mariadb-dump', 'mariadb-client'))} --no-defaults --protocol=TCP --user=${db.user} --single-transaction ${database}`,
      load: (database) => `${client} --no-defaults --protocol=TCP --user=${db.user} ${database}`,
      stop: () => db.stop(),
    };
  },
};

export const ENGINES: Record<Engine['name'], Engine> = { postgres, mariadb };
