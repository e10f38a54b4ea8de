import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { StreamSource } from '../../repository/backup.ts';
import { DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS, type TlsSettings } from '../connection.ts';
import type {
  DatabaseDump,
  DatabaseRestoreOptions,
  DatabaseRestoreResult,
  DatabaseSource,
  ObjectCount,
  ScratchReservation,
  ScratchServer,
  Skipped,
  TableStatsOptions,
} from '../source.ts';
import { namedTimestamp } from '../table-stats.ts';
import { type PostgresConnection, Psql } from './client.ts';
import { type DumpContext, type DumpOutcome, dumpDatabase, dumpGlobals } from './dump.ts';
import { portableHeader } from './dump-header.ts';
import { type RestoreContext, restoreDatabase } from './restore.ts';
import { countRows } from './row-counts.ts';
import {
  DRILL_PREFIX,
  dropAbandonedScratch,
  dropScratchDatabase,
  SCRATCH_LOCK_KEY,
  SCRATCH_PREFIX,
  scratchNames,
} from './scratch.ts';
import { liveTableStats, tableColumns } from './table-stats.ts';
import { findTools, formatMajor, majorOf, type PostgresTools } from './tools.ts';

export interface PostgresSourceOptions {
  host: string;
  port?: number;
  user: string;
  /** Passed to pg_dump, pg_dumpall and psql only as PGPASSWORD; absent: none (certificate or trust authentication). */
  password?: string;
  /** The databases to dump, or every database that accepts connections (plus roles, as `globals.sql`). */
  databases: string[] | 'all';
  tls?: TlsSettings;
  connectTimeoutSeconds?: number;
  /** How long pg_dump waits for a table lock before failing (a migration holding ACCESS EXCLUSIVE). */
  lockWaitTimeoutSeconds?: number;
  /** The timestamp column whose newest value a backup records, per table (`schema.table`, or `db.schema.table`). */
  timestampColumns?: Readonly<Record<string, string>>;
}

export const GLOBALS_STREAM = 'globals.sql';

interface Resolved {
  tools: PostgresTools;
  serverVersion: number;
  databases: string[];
  skipped: Skipped[];
}

/** A PostgreSQL server dumped with pg_dump (plain SQL) and restored with psql. */
export class PostgresSource implements DatabaseSource, ScratchServer {
  readonly description: string;
  private readonly connection: PostgresConnection;
  private readonly databases: string[] | 'all';
  private readonly lockWaitTimeoutSeconds: number;
  private readonly timestampColumns: Readonly<Record<string, string>> | undefined;
  private tools: Promise<PostgresTools> | undefined;
  /** What check() found, reused by dump(): each psql session costs a connection. */
  private resolved: Promise<Resolved> | undefined;

  constructor(options: PostgresSourceOptions) {
    const port = options.port ?? 5432;
    if (!options.host) throw new TidemarkError('InvalidArgument', 'postgresql source: host is empty');
    if (!options.user) throw new TidemarkError('InvalidArgument', 'postgresql source: user is empty');
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new TidemarkError('InvalidArgument', `postgresql source: port ${port} is not a TCP port`);
    if (options.databases !== 'all' && (options.databases.length === 0 || options.databases.some((d) => !d)))
      throw new TidemarkError('InvalidArgument', 'postgresql source: name at least one database, or all');
    this.connection = {
      host: options.host,
      port,
      user: options.user,
      password: options.password,
      ...(options.tls ? { tls: options.tls } : {}),
      connectTimeoutSeconds: options.connectTimeoutSeconds,
    };
    this.databases = options.databases;
    this.lockWaitTimeoutSeconds = options.lockWaitTimeoutSeconds ?? DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS;
    this.timestampColumns = options.timestampColumns;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    const path = options.databases === 'all' ? '*' : options.databases.map(encodeURIComponent).join(',');
    this.description = `postgresql://${encodeURIComponent(options.user)}@${host}:${port}/${path}`;
  }

  async check(): Promise<void> {
    await this.resolution();
  }

  async dump(): Promise<DatabaseDump> {
    const resolved = await this.resolution();
    const several = this.databases === 'all' || resolved.databases.length > 1;
    const objects: ObjectCount[] = [];
    const skipped: Skipped[] = [...resolved.skipped];
    const context = this.dumpContext(resolved.tools, this.timestampColumns);
    const collect = (database: string | undefined) => (outcome: DumpOutcome) => {
      const prefix = several && database !== undefined ? `${database}.` : '';
      objects.push(...outcome.counts.map((c) => ({ ...c, name: prefix + c.name })));
      skipped.push(...outcome.skipped);
    };
    const streams: StreamSource[] = [];
    if (this.databases === 'all') {
      if (resolved.databases.includes('globals'))
        throw new TidemarkError(
          'Unsupported',
          `${this.description}: a database named "globals" would share its stream name with the roles (${GLOBALS_STREAM}); list the databases instead of all`,
        );
      streams.push({ name: GLOBALS_STREAM, data: dumpGlobals(context, collect(undefined)) });
    }
    for (const database of resolved.databases)
      streams.push({ name: `${database}.sql`, data: dumpDatabase(context, database, collect(database)) });
    return { streams, objects: () => [...objects], skipped: () => [...skipped] };
  }

  async restore(data: Readable, options: DatabaseRestoreOptions): Promise<DatabaseRestoreResult> {
    let context: RestoreContext;
    try {
      const tools = await this.findTools();
      const psql = new Psql(tools.psql, this.connection, tools.stdbuf);
      context = {
        psql,
        password: this.connection.password,
        server: this.server(),
        asRole: (role) => new Psql(tools.psql, { ...this.connection, user: role.user, password: role.password }),
      };
    } catch (error) {
      data.destroy();
      throw error;
    }
    return restoreDatabase(context, portableHeader(data), options);
  }

  /** Exact row counts of one live database, named like a single-database dump's (`schema.table`). */
  async countRows(database: string): Promise<ObjectCount[]> {
    const psql = new Psql((await this.findTools()).psql, this.connection);
    return countRows(psql, database, `counting rows of database "${database}" on ${this.server()}`);
  }

  async listDatabases(): Promise<string[]> {
    return (await this.resolution()).databases;
  }

  /** A new `tidemark_drill_<token>` name, marked in use by the advisory lock `<token>` (scratch.ts). */
  async reserveDrillDatabase(): Promise<ScratchReservation> {
    const psql = new Psql((await this.findTools()).psql, this.connection);
    const { token, scratch } = scratchNames(DRILL_PREFIX);
    const lock = await psql.lock(
      'postgres',
      SCRATCH_LOCK_KEY,
      { token },
      `holding the lock that marks database "${scratch}" on ${this.server()} as in use`,
    );
    return { database: scratch, release: () => lock.release() };
  }

  async dropDrillDatabase(database: string): Promise<string | undefined> {
    const psql = new Psql((await this.findTools()).psql, this.connection);
    return dropScratchDatabase(psql, 'postgres', database, this.server(), await this.serverVersion(psql, 'postgres'));
  }

  async dropAbandoned(): Promise<string[]> {
    const psql = new Psql((await this.findTools()).psql, this.connection);
    const version = await this.serverVersion(psql, 'postgres');
    return [
      ...(await dropAbandonedScratch(psql, 'postgres', this.server(), version, DRILL_PREFIX)),
      ...(await dropAbandonedScratch(psql, 'postgres', this.server(), version, SCRATCH_PREFIX)),
    ];
  }

  /**
   * The statistics of every table of `database`, named like a single-database dump's (`schema.table`):
   * with checksums by dumping it as a backup does (a restored scratch database), else by SQL (a live source).
   */
  async tableStats(database: string, options: TableStatsOptions): Promise<ObjectCount[]> {
    const tools = await this.findTools();
    if (options.checksums) {
      let counts: ObjectCount[] = [];
      const context = this.dumpContext(tools, options.timestampColumns);
      for await (const _ of dumpDatabase(context, database, (outcome) => (counts = outcome.counts)));
      return counts;
    }
    const psql = new Psql(tools.psql, this.connection);
    const doing = `reading the table statistics of database "${database}" on ${this.server()}`;
    const plans = await tableColumns(
      psql,
      database,
      (table) => namedTimestamp(options.timestampColumns, [`${database}.${table}`, table]),
      doing,
    );
    return liveTableStats(psql, database, plans, doing);
  }

  private dumpContext(
    tools: PostgresTools,
    timestampColumns: Readonly<Record<string, string>> | undefined,
  ): DumpContext {
    return {
      tools,
      connection: this.connection,
      description: this.description,
      lockWaitTimeoutSeconds: this.lockWaitTimeoutSeconds,
      ...(timestampColumns ? { timestampColumns } : {}),
    };
  }

  private resolution(): Promise<Resolved> {
    this.resolved ??= this.resolve();
    return this.resolved;
  }

  /**
   * Connects to every database to be dumped (for `all`: to `postgres`, to list them), and checks that
   * pg_dump is at least as new as the server, which pg_dump requires.
   */
  private async resolve(): Promise<Resolved> {
    const tools = await this.findTools();
    const psql = new Psql(tools.psql, this.connection);
    const skipped: Skipped[] = [];
    let databases: string[];
    let serverVersion = 0;
    if (this.databases === 'all') {
      serverVersion = await this.serverVersion(psql, 'postgres');
      const rows = await psql.query(
        'postgres',
        `select datname, has_database_privilege(datname, 'CONNECT') from pg_catalog.pg_database
         where not datistemplate and datallowconn and datname not like :'scratch' and datname not like :'drill'
         order by datname`,
        {
          vars: { scratch: `${SCRATCH_PREFIX}%`, drill: `${DRILL_PREFIX}%` },
          doing: `listing the databases of ${this.description}`,
        },
      );
      databases = [];
      for (let i = 0; i + 1 < rows.length; i += 2) {
        const name = rows[i] as string;
        if (rows[i + 1] === 't') databases.push(name);
        else skipped.push({ path: name, reason: `user ${this.connection.user} may not connect to it` });
      }
    } else {
      databases = this.databases;
      for (const database of databases) serverVersion = await this.serverVersion(psql, database);
    }
    if (majorOf(tools.pgDumpVersion) < majorOf(serverVersion))
      throw new TidemarkError(
        'Unsupported',
        `${this.description}: the server runs PostgreSQL ${formatMajor(serverVersion)} but ${tools.pgDump} is version ${formatMajor(tools.pgDumpVersion)}; pg_dump must be at least the server's major version`,
      );
    return { tools, serverVersion, databases, skipped };
  }

  private async serverVersion(psql: Psql, database: string): Promise<number> {
    const [version] = await psql.query(database, "select current_setting('server_version_num')", {
      doing: `${this.description}: cannot connect to database "${database}"`,
    });
    return Number(version);
  }

  private findTools(): Promise<PostgresTools> {
    this.tools ??= findTools();
    return this.tools;
  }

  /** The server without databases, for restore messages. */
  private server(): string {
    return this.description.slice(0, this.description.lastIndexOf('/'));
  }
}
