import type { Readable } from 'node:stream';
import type { StreamSource } from '../repository/backup.ts';

/**
 * Record counts per object: rows per table (`schema.table`, or `database.schema.table` when several),
 * files per directory. Database backups also record, per table, what a restore drill or an audit
 * compares (src/sources/table-stats.ts; docs/repository-format.md, "Table statistics").
 */
export interface ObjectCount {
  name: string;
  records: number;
  /** Order-independent checksum of the table's rows as the dump carries them (32 hex); absent when not computed. */
  checksum?: string;
  /** Range of a single-column integer primary key, as the dump's text of the values. */
  key?: { column: string; min: string; max: string };
  /** Newest value of a timestamp column (named by the policy, else found), as the dump's text. */
  newest?: { column: string; value: string };
}

/** Something that could not be backed up or restored, and why (an unlogged table, a missing extension). */
export interface Skipped {
  path: string;
  reason: string;
}

/**
 * A logical dump of a database server, as streams for the repository: one per database (plain SQL,
 * uncompressed so the chunker can deduplicate), plus one for server-wide objects (roles) when all
 * databases are dumped. Streams are produced lazily, in order, and consumed one at a time.
 */
export interface DatabaseDump {
  streams: StreamSource[];
  /** Complete once every stream was consumed: counts taken in the same snapshot as the dump. */
  objects(): ObjectCount[];
  skipped(): Skipped[];
}

export type RestoreMode = 'new' | 'replace';

/** Credentials of a database role (username and password keys of its Secret). */
export interface ScriptRole {
  user: string;
  password: string;
}

export interface DatabaseRestoreOptions {
  /** Database to restore into (created when missing). */
  database: string;
  /**
   * `new`: refuse (changing nothing) when the target database exists and holds any table.
   * `replace`: drop what the target holds, then restore.
   */
  mode: RestoreMode;
  /** SQL run on the restored database afterwards (e.g. anonymisation for a QA copy). */
  postRestoreSQL?: string;
  /** The role postRestoreSQL runs as, connecting to the same server; absent: the restoring user. */
  scriptRole?: ScriptRole;
  /**
   * Roles the backup names that the target server lacks: created (NOLOGIN, no password, no attributes)
   * when true; when false or absent the restore fails before writing anything, listing them.
   */
  createMissingRoles?: boolean;
  /** Aborted (SIGTERM, SIGINT): stop the client, clean up, leave the target as it was, fail as Interrupted. */
  signal?: AbortSignal;
}

export interface DatabaseRestoreResult {
  /** Counts read back from the restored database, to compare with the backup's. */
  objects: ObjectCount[];
  skipped: Skipped[];
  /** What the user should know although the restore succeeded (counts that could not be told, cleanups). */
  warnings?: string[];
}

export interface TableStatsOptions {
  /**
   * True: dump the database with the backup's own dump tool and options and read the stream with the
   * backup's own scanner, so counts and checksums are comparable with a backup's (a restored scratch
   * database). False: count, key range and newest timestamp by SQL, no checksums (a live source).
   */
  checksums: boolean;
  /** The timestamp column per table (`db.table` or the name within the database), as the policy names it. */
  timestampColumns?: Readonly<Record<string, string>>;
}

/** A PostgreSQL or MySQL/MariaDB server, reached with credentials from the environment only. */
export interface DatabaseSource {
  /** The source for logs, status and snapshots: `postgresql://user@host:port/db`, never a password. */
  readonly description: string;
  /**
   * Connects and checks that what will be dumped exists, before any snapshot is started: a wrong
   * password, an unreachable host or a missing database fail here with code SourceUnavailable and a
   * message naming the source.
   */
  check(): Promise<void>;
  dump(): Promise<DatabaseDump>;
  /** The databases a dump covers (for `all`: every one there is now), each checked to exist. */
  listDatabases(): Promise<string[]>;
  /**
   * Per table of `database` (named as a single-database dump names them): records, key range, newest
   * timestamp, and with `checksums` the checksum of its rows, all comparable with what a backup
   * recorded (src/sources/verify.ts compareTables).
   */
  tableStats(database: string, options: TableStatsOptions): Promise<ObjectCount[]>;
  /** Restores one database's stream (as written by `dump`) into `options.database` on this server. */
  restore(data: Readable, options: DatabaseRestoreOptions): Promise<DatabaseRestoreResult>;
}

/** A database reserved for a restore drill: its name, marked in use until `release` (or until the holder dies). */
export interface ScratchReservation {
  database: string;
  release(): Promise<void>;
}

/**
 * A server restore drills write temporary databases to. A reserved database whose mark nobody holds
 * was left by a drill that was killed; `dropAbandoned` removes those (and a killed restore's scratch
 * databases), never one a running drill or restore holds.
 */
export interface ScratchServer {
  readonly description: string;
  reserveDrillDatabase(): Promise<ScratchReservation>;
  /** Drops the database; says why it could not instead of throwing. */
  dropDrillDatabase(database: string): Promise<string | undefined>;
  /** What was dropped, and what could not be. */
  dropAbandoned(): Promise<string[]>;
}
