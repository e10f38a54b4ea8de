import { join } from 'node:path';
import { TidemarkError } from '../../errors.ts';
import { log } from '../../log.ts';
import type { ProgressListener } from '../../repository/progress.ts';
import type { Repository } from '../../repository/repository.ts';
import { streamNames } from '../../repository/restore.ts';
import type { Snapshot } from '../../repository/snapshot.ts';
import { verifyRestoredTree } from '../../repository/verify-tree.ts';
import { liveSources, refuseLiveSource } from '../../sources/live-source.ts';
import { openDatabase, parseSourceUrl, type SourceLocation } from '../../sources/open.ts';
import type { DatabaseSource, ScratchServer } from '../../sources/source.ts';
import { compareTables, type TableComparison } from '../../sources/verify.ts';
import { interruptible } from '../interrupt.ts';
import { runRestore } from '../run-restore.ts';
import { required } from './env.ts';
import { chosenSnapshot, readSnapshotSelection, type SnapshotSelection, snapshotEnv } from './snapshot.ts';
import type { AgentTask, TaskContext } from './task.ts';

/**
 * `drill`: restores a snapshot into a temporary database `tidemark_drill_<token>` on the drill server
 * (never a live source's server: the restore's guard, by host and port), checks it against the table
 * statistics the backup recorded, and drops it, whatever happened; SIGTERM stops the restore and still drops it.
 * After a drill that did not succeed (killed by SIGKILL, it could not drop anything) the operator runs
 * this task in cleanup mode, which drops what no running drill or restore holds
 * (sources/postgres/scratch.ts, sources/mysql/scratch.ts say how they are marked). Every drill starts
 * with the same cleanup. A volume source's drill restores into the scratch PVC the operator created
 * for it (mounted here, and deleted by the operator when the drill ended) and re-reads every file
 * against the snapshot's tree (verifyRestoredTree). Fails VerificationFailed (the restored copy differs from the record), Corrupt
 * or NotFound (the backup), SourceUnavailable (the drill server), InvalidArgument (a live source's
 * server), Interrupted, or a storage code.
 */
const ENV = {
  /**
   * `postgresql://USER@HOST:PORT/` or `mysql://...` (no database: the drill picks its own), or for a
   * volume source `file:///PATH`: the mount of the scratch PVC the operator created for this drill.
   */
  server: 'TIDEMARK_DRILL_SERVER',
  /** `true`: only drop what interrupted drills and restores left on the server. */
  cleanup: 'TIDEMARK_DRILL_CLEANUP',
} as const;

export type DrillInput = { server: string } & ({ mode: 'cleanup' } | { mode: 'drill'; snapshot: SnapshotSelection });

export type DrillJobInput = { server: string } & ({ mode: 'cleanup' } | { mode: 'drill'; snapshotId: string });

export interface DrillResult {
  snapshotId?: string;
  snapshotTime?: string;
  /** Start of the restore until the restored copy was verified (a drill, not a cleanup). */
  rtoMs?: number;
  /** Tables whose restored rows were compared with the backup's record. */
  tablesChecked: number;
  /** Of those, the tables whose content checksum was compared too (a backup records them from issue 13 on). */
  tablesChecksummed?: number;
  /** A volume drill: the files re-read and compared with the snapshot (size and content), and their bytes. */
  filesChecked?: number;
  bytesChecked?: number;
  /** What interrupted drills and restores left on the server and was dropped (or could not be). */
  cleanup: string[];
}

export const drill: AgentTask<'drill', DrillInput, DrillResult, DrillJobInput> = {
  name: 'drill',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) => [
    { name: ENV.server, value: job.server },
    ...(job.mode === 'cleanup'
      ? [{ name: ENV.cleanup, value: 'true' }]
      : snapshotEnv({ choice: { id: job.snapshotId } })),
  ],
  input: (env) => {
    const server = required(env, ENV.server);
    return env[ENV.cleanup] === 'true'
      ? { server, mode: 'cleanup' }
      : { server, mode: 'drill', snapshot: readSnapshotSelection(env) };
  },
  run: (input, context) => runDrill(input, context),
};

async function runDrill(input: DrillInput, context: TaskContext): Promise<DrillResult> {
  const target = parseSourceUrl(input.server, { allDatabases: true });
  if (target.kind === 'volume') {
    // The operator deletes the scratch PVC when the drill ended: nothing is left to clean up here.
    if (input.mode === 'cleanup') return { tablesChecked: 0, cleanup: [] };
    return drillVolume(target.path, input.snapshot, context);
  }
  const location = target;
  const server = openDatabase(location, context.env);
  // Never onto the server of a live source, whatever the database: the restore's guard, by host and port.
  await refuseLiveSource(
    { ...location, description: server.description },
    liveSources(context.env),
    undefined,
    (source) =>
      `drill server ${server.description} is the server of ${source.name} (${source.host}:${source.port}): drills restore onto a server of their own; nothing was changed`,
  );
  const cleanup = await server.dropAbandoned();
  if (input.mode === 'cleanup') return { tablesChecked: 0, cleanup };
  const repository = await context.repository();
  const snapshot = await chosenSnapshot(repository, input.snapshot);
  const verified = await interruptible(input.server, (signal) =>
    drillInto(
      server,
      location,
      { repository, snapshot, env: context.env, onProgress: context.onProgress },
      cleanup,
      signal,
    ),
  );
  return { snapshotId: snapshot.id, snapshotTime: snapshot.time, ...verified, cleanup };
}

/**
 * Restores the snapshot's tree into `scratch` (a directory below it: a fresh file system may hold
 * lost+found, which is not the snapshot's) and re-reads every file, comparing size and content with
 * the snapshot's tree. The RTO is the time until it was verified.
 */
async function drillVolume(scratch: string, selection: SnapshotSelection, context: TaskContext): Promise<DrillResult> {
  const repository = await context.repository();
  const snapshot = await chosenSnapshot(repository, selection);
  const started = Date.now();
  const dir = join(scratch, 'tree');
  await runRestore({
    repository,
    snapshot,
    targetUrl: `file://${dir}`,
    mode: 'replace', // the scratch PVC of a drill run again for its slot may hold the first run's tree
    env: context.env,
    onProgress: context.onProgress,
  });
  const verified = await verifyRestoredTree(repository, snapshot, dir);
  if (verified.mismatchCount > 0) {
    const shown = verified.mismatches.map((m) => `${m.path}: ${m.reason}`);
    const more = verified.mismatchCount - shown.length;
    throw new TidemarkError(
      'VerificationFailed',
      `the restored tree of snapshot ${snapshot.id.slice(0, 12)} differs from the snapshot: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
    );
  }
  return {
    snapshotId: snapshot.id,
    snapshotTime: snapshot.time,
    rtoMs: Date.now() - started,
    tablesChecked: 0,
    filesChecked: verified.files,
    bytesChecked: verified.bytes,
    cleanup: [],
  };
}

/**
 * Restores every database stream of the snapshot into a drill database of its own, one after the
 * other, and compares each with what the backup recorded per table (rows, content checksum, key range,
 * newest value: sources/verify.ts). The RTO is the time until the last was verified.
 */
async function drillInto(
  server: DatabaseSource & ScratchServer,
  location: Extract<SourceLocation, { kind: 'database' }>,
  input: { repository: Repository; snapshot: Snapshot; env: NodeJS.ProcessEnv; onProgress: ProgressListener },
  cleanup: string[],
  signal: AbortSignal | undefined,
): Promise<{ rtoMs: number; tablesChecked: number; tablesChecksummed: number }> {
  const started = Date.now();
  let tablesChecked = 0;
  let checksummed = 0;
  for (const database of databasesOf(await streamNames(input.repository, input.snapshot))) {
    const reservation = await server.reserveDrillDatabase();
    try {
      const scheme = location.engine === 'postgresql' ? 'postgresql' : 'mysql';
      const outcome = await runRestore({
        repository: input.repository,
        snapshot: input.snapshot,
        targetUrl: `${scheme}://${encodeURIComponent(location.user)}@${hostPart(location.host)}:${location.port}/${reservation.database}`,
        mode: 'new',
        ...(database ? { database } : {}),
        env: input.env,
        onProgress: input.onProgress,
        ...(signal ? { signal } : {}),
      });
      if (signal?.aborted)
        throw new TidemarkError('Interrupted', `drill of snapshot ${input.snapshot.id.slice(0, 12)} interrupted`);
      // The same dump tool and counter as the backup's, so the checksums of an intact copy match.
      const observed = await server.tableStats(reservation.database, { checksums: true });
      const what = `snapshot ${input.snapshot.id.slice(0, 12)}${database ? ` database "${database}"` : ''}`;
      if (!input.snapshot.objects)
        throw new TidemarkError(
          'VerificationFailed',
          `${what}: the backup recorded no tables to check the restored copy against`,
        );
      const differences = describeDifferences(compareTables(outcome.expected, observed));
      if (differences.length)
        throw new TidemarkError(
          'VerificationFailed',
          `the restored copy of ${what} differs from what the backup recorded: ${differences.join('; ')}`,
        );
      checksummed += observed.filter((o) => o.checksum !== undefined).length;
      tablesChecked += observed.length;
    } finally {
      const failure = await server.dropDrillDatabase(reservation.database);
      await reservation.release();
      if (failure) {
        const note = `the drill database "${reservation.database}" could not be dropped (${failure}); the next drill on ${server.description} drops it`;
        log.warn({ event: 'drill-cleanup-failed', database: reservation.database }, note);
        cleanup.push(note);
      }
    }
  }
  return { rtoMs: Date.now() - started, tablesChecked, tablesChecksummed: checksummed };
}

const hostPart = (host: string) => (host.includes(':') ? `[${host}]` : host);

/**
 * The databases to restore, one per database stream of the snapshot; a snapshot of one database
 * restores its only stream (undefined). The server-wide stream of roles (`globals.sql`, moved aside
 * to `_globals.sql` when a database has that name) is not a database.
 */
export function databasesOf(streams: string[]): (string | undefined)[] {
  if (streams.length <= 1) return [undefined];
  const globals = streams.filter((s) => /^_*globals\.sql$/.test(s)).sort((a, b) => b.length - a.length)[0];
  return streams.filter((s) => s !== globals && s.endsWith('.sql')).map((s) => s.slice(0, -'.sql'.length));
}

/**
 * What differs between the tables the backup recorded and the restored copy (at most 20 named): a
 * table missing or not in the backup, another row count, content checksum, key range or newest value.
 */
export function describeDifferences(comparison: TableComparison): string[] {
  const differences = [
    ...comparison.missing.map((name) => `${name}: missing`),
    ...comparison.extra.map((name) => `${name}: not in the backup`),
    ...comparison.tables
      .filter((t) => !t.ok)
      .map((t) => {
        const what = [
          t.recordsDelta !== 0 ? `${t.observed.records} rows restored, ${t.recorded.records} recorded` : '',
          t.checksumEqual === false ? 'content checksum differs' : '',
          t.keyEqual === false
            ? `key range ${t.observed.key?.min}..${t.observed.key?.max}, ${t.recorded.key?.min}..${t.recorded.key?.max} recorded`
            : '',
          t.newestEqual === false ? `newest ${t.observed.newest?.value}, ${t.recorded.newest?.value} recorded` : '',
        ].filter(Boolean);
        return `${t.name}: ${what.join(', ')}`;
      }),
  ];
  return differences.length > 20 ? [...differences.slice(0, 20), `and ${differences.length - 20} more`] : differences;
}
