import { AUDIT_LIST_LIMIT } from '../../api/backuppolicy.ts';
import { withContext } from '../../errors.ts';
import { log } from '../../log.ts';
import { auditTree, type Bounded, type ChangedFile } from '../../repository/audit-tree.ts';
import type { Repository } from '../../repository/repository.ts';
import { auditTables, type TableDifference } from '../../sources/audit-tables.ts';
import { openDatabase, parseSourceUrl, type SourceLocation } from '../../sources/open.ts';
import type { ObjectCount } from '../../sources/source.ts';
import { timestampColumnsFrom } from '../../sources/table-stats.ts';
import { required, SOURCE_ENV } from './env.ts';
import { SNAPSHOT_ENV } from './snapshot.ts';
import type { AgentTask } from './task.ts';

/** What an audit compares: a live source (read only), reached as its backup reaches it, with one snapshot of it. */
export interface AuditInput {
  /** `postgresql://…`, `mysql://…` (password from env) or `file:///data` (the PVC, mounted read-only). */
  sourceUrl: string;
  allDatabases?: boolean;
  /** Volumes: the source's exclude globs (what backups leave out is not missing). */
  excludes?: string[];
  repository: Repository;
  /** The snapshot of the latest successful backup: id or unique prefix. */
  snapshot: string;
  /** Databases: table → timestamp column whose newest value is compared (else one is found). */
  timestampColumns?: Record<string, string>;
  env: NodeJS.ProcessEnv;
}

/**
 * What an audit found, bounded for the termination message and the policy status: lists keep their
 * first AUDIT_LIST_LIMIT entries (the largest differences first), totals count them all.
 */
export interface AuditReport {
  snapshotId: string;
  snapshotTime: string;
  /**
   * Databases: live rows the backup does not hold (per table, live minus recorded count, never
   * negative; all rows of a table it lacks). Volumes: files not in the backup or changed since.
   */
  missingObjects: number;
  tables?: { compared: number; differences: Bounded<TableDifference> };
  files?: { live: number; missing: Bounded<string>; removed: Bounded<string>; changed: Bounded<ChangedFile> };
}

/** The agent's log line lists up to this many; the result as many as the status keeps (AUDIT_LIST_LIMIT). */
const LOG_LIST_LIMIT = 1000;
/** Paths and names are cut to this many characters in the result (a path may be 4096 bytes long). */
const NAME_LIMIT = 200;

/** Runs an audit: reads the snapshot, reads the live source, compares. Never writes to the source. */
export async function runAudit(input: AuditInput): Promise<AuditReport> {
  const location = parseSourceUrl(input.sourceUrl, { allDatabases: input.allDatabases ?? false });
  const snapshot = await input.repository.findSnapshot(input.snapshot);
  const base = { snapshotId: snapshot.id, snapshotTime: snapshot.time };
  if (location.kind === 'volume') {
    const tree = await auditTree(input.repository.chunkStore(), snapshot.root, location.path, {
      excludes: input.excludes ?? [],
      limit: LOG_LIST_LIMIT,
    });
    log.info({ event: 'audit-files', ...tree }, 'files compared with the backup');
    return bounded({
      ...base,
      missingObjects: tree.missing.total + tree.changed.total,
      files: { live: tree.liveFiles, missing: tree.missing, removed: tree.removed, changed: tree.changed },
    });
  }
  const live = await liveTables(location, input);
  const tables = auditTables(snapshot.objects ?? [], live);
  log.info(
    { event: 'audit-tables', ...tables, differences: tables.differences.slice(0, LOG_LIST_LIMIT) },
    'tables compared with the backup',
  );
  const differences = [...tables.differences].sort((a, b) => b.missing - a.missing || b.removed - a.removed);
  return bounded({
    ...base,
    missingObjects: tables.missingRecords,
    tables: { compared: tables.tables, differences: { items: differences, total: differences.length } },
  });
}

/**
 * The live tables of every database the source covers, named as the backup names them (`db.` in
 * front when it covers several), with key range and newest timestamp, without checksums.
 */
async function liveTables(location: Extract<SourceLocation, { kind: 'database' }>, input: AuditInput) {
  const source = openDatabase(location, input.env);
  const databases = await source.listDatabases();
  const qualify = location.databases === 'all' || databases.length > 1;
  const live: ObjectCount[] = [];
  for (const database of databases) {
    const prefix = qualify ? `${database}.` : '';
    const options = {
      checksums: false,
      ...(input.timestampColumns ? { timestampColumns: input.timestampColumns } : {}),
    };
    const stats = await source.tableStats(database, options).catch((error: unknown) => {
      throw withContext(`auditing database ${database} of ${source.description}`, error);
    });
    live.push(...stats.map((t) => ({ ...t, name: prefix + t.name })));
  }
  return live;
}

/** The report's JSON stays below this, well inside the 4096-byte termination message with the rest of the result. */
const REPORT_BYTES = 3000;

/** Cuts every list to AUDIT_LIST_LIMIT entries and long names to NAME_LIMIT, then lists to fewer entries until the report fits REPORT_BYTES. */
export function bounded(report: AuditReport): AuditReport {
  let current = limited(report, AUDIT_LIST_LIMIT);
  for (
    let limit = AUDIT_LIST_LIMIT - 1;
    limit >= 0 && Buffer.byteLength(JSON.stringify(current)) > REPORT_BYTES;
    limit--
  )
    current = limited(report, limit);
  return current;
}

function limited(report: AuditReport, limit: number): AuditReport {
  const cut = <T>(list: Bounded<T>, shorten: (item: T) => T): Bounded<T> => ({
    items: list.items.slice(0, limit).map(shorten),
    total: list.total,
  });
  const path = (p: string) => (p.length > NAME_LIMIT ? `…${p.slice(-(NAME_LIMIT - 1))}` : p);
  return {
    ...report,
    ...(report.tables
      ? {
          tables: {
            compared: report.tables.compared,
            differences: cut(report.tables.differences, (d) => ({ ...d, name: path(d.name) })),
          },
        }
      : {}),
    ...(report.files
      ? {
          files: {
            live: report.files.live,
            missing: cut(report.files.missing, path),
            removed: cut(report.files.removed, path),
            changed: cut(report.files.changed, (c) => ({ ...c, path: path(c.path) })),
          },
        }
      : {}),
  };
}

/** What the operator gives an audit Job besides the source's (with its timestamp columns) and the repository's access. */
export interface AuditJobInput {
  snapshotId: string;
}

/**
 * `audit`: compares the live source (SOURCE_ENV, as a backup reaches it; read only) with one snapshot
 * of it. Fails SourceUnavailable (the source cannot be read), NotFound (no such snapshot),
 * InvalidArgument (bad input), or a storage code.
 */
export const audit: AgentTask<'audit', Omit<AuditInput, 'repository' | 'env'>, AuditReport, AuditJobInput> = {
  name: 'audit',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) => [{ name: SNAPSHOT_ENV.id, value: job.snapshotId }],
  input: (env) => {
    const excludes = env[SOURCE_ENV.excludes];
    const timestampColumns = timestampColumnsFrom(env);
    return {
      sourceUrl: required(env, SOURCE_ENV.url),
      allDatabases: env[SOURCE_ENV.allDatabases] === 'true',
      excludes: excludes ? (JSON.parse(excludes) as string[]) : [],
      snapshot: required(env, SNAPSHOT_ENV.id),
      ...(timestampColumns ? { timestampColumns } : {}),
    };
  },
  run: async (input, { env, repository }) => runAudit({ ...input, repository: await repository(), env }),
};
