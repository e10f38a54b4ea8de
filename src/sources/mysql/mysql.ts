import type { Readable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import type { StreamSource } from '../../repository/backup.ts';
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
import { type Connection, dumpsUsers, findTool, runSql } from './client.ts';
import { type DumpReport, dumpDatabase, dumpGlobals, dumpPlan } from './dump.ts';
import { restoreDatabase } from './restore.ts';
import { DRILL_PREFIX, dropScratch, removeAbandonedScratch, SCRATCH_PREFIX, takeScratchLock } from './scratch.ts';
import { liveTableStats, tableColumns } from './table-stats.ts';

export interface MySQLSourceOptions extends Connection {
  /** One tenant = one database; `all` is every database but the server's own schemas. */
  databases: string[] | 'all';
  /** How long a dump waits for a metadata lock held by another session (lock-watch.ts). */
  lockWaitTimeoutSeconds?: number;
  /** The timestamp column whose newest value a backup records, per table (`table`, or `db.table`). */
  timestampColumns?: Readonly<Record<string, string>>;
}

/** Server schemas never dumped as databases; users and grants from `mysql` go to the globals stream instead. */
export const SYSTEM_DATABASES = ['information_schema', 'performance_schema', 'sys', 'mysql'];

/** The stream of users, roles and grants when all databases are dumped. */
export const GLOBALS_STREAM = 'globals.sql';

/**
 * A MySQL/MariaDB server, dumped with mariadb-dump (or mysqldump) and restored with the mariadb (or mysql)
 * client from PATH. Each database is one stream, `<db>.sql`, consistent in itself (one transaction per
 * database); its record counts are named `table`, or `db.table` when several databases are dumped.
 */
export class MySQLSource implements DatabaseSource, ScratchServer {
  readonly description: string;
  private readonly connection: Connection;

  constructor(private readonly options: MySQLSourceOptions) {
    const { host, port, user, password, tls, databases } = options;
    this.connection = { host, port, user, ...(password === undefined ? {} : { password }), ...(tls ? { tls } : {}) };
    if (databases !== 'all') {
      if (databases.length === 0) throw new TidemarkError('InvalidArgument', 'name at least one database, or all');
      for (const name of databases) checkDatabaseName(name);
    }
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const path = databases === 'all' ? '*' : databases.map(encodeURIComponent).join(',');
    this.description = `mysql://${encodeURIComponent(user)}@${hostPart}:${port}/${path}`;
  }

  async check(): Promise<void> {
    await this.listDatabases();
  }

  /** The databases to dump; each named one must exist. */
  async listDatabases(): Promise<string[]> {
    const present = (await runSql(this.connection, 'SHOW DATABASES', `cannot connect to ${this.description}`)).map(
      ([name]) => name as string,
    );
    const wanted = this.options.databases;
    if (wanted === 'all') return present.filter((name) => !SYSTEM_DATABASES.includes(name));
    const missing = wanted.filter((name) => !present.includes(name));
    if (missing.length)
      throw new TidemarkError(
        'SourceUnavailable',
        `${this.description}: database ${missing.join(', ')} does not exist (or ${this.connection.user} may not see it)`,
      );
    return wanted;
  }

  async dump(): Promise<DatabaseDump> {
    const databases = await this.listDatabases();
    const all = this.options.databases === 'all';
    const qualify = all || databases.length > 1;
    const report: DumpReport = { description: this.description, objects: [], skipped: [] };
    const streams: StreamSource[] = databases.map((database) => ({
      name: `${database}.sql`,
      data: dumpDatabase(
        this.connection,
        database,
        qualify ? `${database}.` : '',
        report,
        this.options.lockWaitTimeoutSeconds,
        this.options.timestampColumns,
      ),
    }));
    if (all && (await dumpsUsers(findTool('dump')))) {
      // A database named `globals` keeps its name; the server-wide stream then moves aside.
      let name = GLOBALS_STREAM;
      while (streams.some((s) => s.name === name)) name = `_${name}`;
      streams.push({ name, data: dumpGlobals(this.connection, report) });
    } else if (all)
      report.skipped.push({ path: 'globals', reason: `users and grants: ${findTool('dump')} has no --system=users` });
    return {
      streams,
      objects: (): ObjectCount[] => [...report.objects],
      skipped: (): Skipped[] => [...report.skipped],
    };
  }

  /**
   * The statistics of every table of `database`, named like a single-database dump's (`table`): with
   * checksums by dumping it as a backup does (a restored scratch database), else by SQL (a live source).
   */
  async tableStats(database: string, options: TableStatsOptions): Promise<ObjectCount[]> {
    checkDatabaseName(database);
    if (options.checksums) {
      const report: DumpReport = { description: this.description, objects: [], skipped: [] };
      const dump = dumpDatabase(
        this.connection,
        database,
        '',
        report,
        this.options.lockWaitTimeoutSeconds,
        options.timestampColumns,
      );
      for await (const _ of dump);
      return report.objects;
    }
    const context = `${this.description}: reading the table statistics of database ${database}`;
    const plans = await tableColumns(
      this.connection,
      database,
      (table) => namedTimestamp(options.timestampColumns, [`${database}.${table}`, table]),
      context,
    );
    const { withHistory } = await dumpPlan(this.connection, database, context);
    return liveTableStats(this.connection, database, plans, withHistory, context);
  }

  async restore(data: Readable, options: DatabaseRestoreOptions): Promise<DatabaseRestoreResult> {
    checkDatabaseName(options.database);
    if (options.mode !== 'new' && options.mode !== 'replace')
      throw new TidemarkError('InvalidArgument', `restore mode ${String(options.mode)}: use new or replace`);
    return restoreDatabase(this.connection, this.description, data, options);
  }

  /** A new `tidemark_drill_<id>` name, marked in use by the named lock of that name (scratch.ts). */
  async reserveDrillDatabase(): Promise<ScratchReservation> {
    const lock = await takeScratchLock(this.connection, `${this.server()}: restore drill`, DRILL_PREFIX);
    return { database: lock.name, release: () => lock.release() };
  }

  async dropDrillDatabase(database: string): Promise<string | undefined> {
    return dropScratch(this.connection, database, `${this.server()}: dropping ${database}`).then(
      () => undefined,
      (error: Error) => error.message,
    );
  }

  async dropAbandoned(): Promise<string[]> {
    const context = `${this.server()}: looking for databases of interrupted drills and restores`;
    return [
      ...(await removeAbandonedScratch(this.connection, context, DRILL_PREFIX)),
      ...(await removeAbandonedScratch(this.connection, context, SCRATCH_PREFIX)),
    ];
  }

  /** The server without databases, for messages. */
  private server(): string {
    return this.description.slice(0, this.description.lastIndexOf('/'));
  }
}

function checkDatabaseName(name: string): void {
  if (name === '' || name.length > 64 || name.includes('\0') || name.endsWith(' '))
    throw new TidemarkError(
      'InvalidArgument',
      `database name ${JSON.stringify(name)} is not valid: 1 to 64 characters, no NUL, not ending in a space`,
    );
}
