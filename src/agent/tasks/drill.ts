import { TidemarkError } from '../../errors.ts';
import { log } from '../../log.ts';
import type { ProgressListener } from '../../repository/progress.ts';
import type { Repository } from '../../repository/repository.ts';
import { streamNames } from '../../repository/restore.ts';
import type { Snapshot } from '../../repository/snapshot.ts';
import { liveSources, refuseLiveSource } from '../../sources/live-source.ts';
import { openDatabase, parseSourceUrl, type SourceLocation } from '../../sources/open.ts';
import type { ObjectCount, ScratchServer } from '../../sources/source.ts';
import { interruptible } from '../interrupt.ts';
import type { AgentResult } from '../result.ts';
import { runRestore } from '../run-restore.ts';

/**
 * The `drill` task: restores a snapshot into a temporary database `tidemark_drill_<token>` on the
 * drill server (never a live source: the restore's live-source guard applies to the server), checks
 * it against the counts the backup recorded, and drops it, whatever happened. SIGTERM stops the
 * restore and still drops it; after a SIGKILL the operator runs this task in cleanup mode, which drops
 * what no running drill or restore holds (sources/postgres/scratch.ts says how they are marked).
 *
 * Environment (besides the repository's and the drill server's credentials, as for a restore):
 *   TIDEMARK_SNAPSHOT          the snapshot to restore (full id)
 *   TIDEMARK_DRILL_SERVER      `postgresql://USER@HOST:PORT/` (no database: the drill picks its own)
 *   TIDEMARK_DRILL_CLEANUP     `true`: only drop what interrupted drills and restores left on the server
 *   TIDEMARK_LIVE_SOURCE_<i>_* the policy's database sources: a drill server that is one is refused
 */
export const DRILL_ENV = {
  snapshot: 'TIDEMARK_SNAPSHOT',
  server: 'TIDEMARK_DRILL_SERVER',
  cleanup: 'TIDEMARK_DRILL_CLEANUP',
} as const;

/** What a drill reports besides ok/error (in AgentResult.drill): present whenever the task itself ended. */
export interface DrillReport {
  /** Start of the restore until the restored copy was verified; absent when it never was. */
  rtoMs?: number;
  /** Tables whose restored rows were compared with the backup's record. */
  tablesChecked: number;
  /** What interrupted drills and restores left on the server and was dropped (or could not be). */
  cleanup: string[];
}

export type DrillInput =
  | { mode: 'cleanup'; server: string; env: NodeJS.ProcessEnv }
  | {
      mode: 'drill';
      server: string;
      repository: Repository;
      snapshot: Snapshot;
      env: NodeJS.ProcessEnv;
      onProgress?: ProgressListener;
    };

/** The drill's input from the environment; the repository is opened only for a drill, not for a cleanup. */
export async function drillInput(
  env: NodeJS.ProcessEnv,
  openRepository: () => Promise<Repository>,
  onProgress?: ProgressListener,
): Promise<DrillInput> {
  const server = env[DRILL_ENV.server];
  if (!server) throw new TidemarkError('InvalidArgument', `${DRILL_ENV.server} is not set`);
  if (env[DRILL_ENV.cleanup] === 'true') return { mode: 'cleanup', server, env };
  const id = env[DRILL_ENV.snapshot];
  if (!id) throw new TidemarkError('InvalidArgument', `${DRILL_ENV.snapshot} is not set`);
  const repository = await openRepository();
  const snapshot = await repository.findSnapshot(id);
  return { mode: 'drill', server, repository, snapshot, env, ...(onProgress ? { onProgress } : {}) };
}

/**
 * Runs the drill (or the cleanup) `input` resolves to; every outcome is a result carrying `drill`,
 * failures too (a damaged repository, a snapshot gone): only a killed drill ends without one.
 */
export async function runDrillTask(input: () => Promise<DrillInput>): Promise<AgentResult> {
  const cleanup: string[] = [];
  const report = (extra: Partial<DrillReport> = {}): DrillReport => ({ tablesChecked: 0, cleanup, ...extra });
  try {
    return await runDrill(await input(), cleanup, report);
  } catch (error) {
    const code = error instanceof TidemarkError ? error.code : 'Internal';
    return { ok: false, error: { code, message: (error as Error).message }, drill: report() };
  }
}

async function runDrill(
  input: DrillInput,
  cleanup: string[],
  report: (extra?: Partial<DrillReport>) => DrillReport,
): Promise<AgentResult> {
  const location = drillServerLocation(input.server);
  const server = openDatabase(location, input.env);
  // Never onto the server of a live source, whatever the database: the restore's guard, by host and port.
  await refuseLiveSource(
    { ...location, description: server.description },
    liveSources(input.env),
    undefined,
    (source) =>
      `drill server ${server.description} is the server of ${source.name} (${source.host}:${source.port}): drills restore onto a server of their own; nothing was changed`,
  );
  cleanup.push(...(await server.dropAbandoned()));
  if (input.mode === 'cleanup') return { ok: true, drill: report() };
  const verified = await interruptible(input.server, (signal) => drill(input, location, server, cleanup, signal));
  return {
    ok: true,
    snapshotId: input.snapshot.id,
    snapshotTime: input.snapshot.time,
    durationMs: verified.rtoMs,
    drill: report(verified),
  };
}

function drillServerLocation(url: string): Extract<SourceLocation, { kind: 'database' }> {
  const location = parseSourceUrl(url, { allDatabases: true });
  if (location.kind !== 'database')
    throw new TidemarkError('InvalidArgument', `drill server ${url}: restore drills of volumes are not supported yet`);
  return location;
}

/**
 * Restores every database stream of the snapshot into a drill database of its own, one after the
 * other, and compares each with the backup's counts. The RTO is the time until the last was verified.
 */
async function drill(
  input: Extract<DrillInput, { mode: 'drill' }>,
  location: Extract<SourceLocation, { kind: 'database' }>,
  server: ScratchServer,
  cleanup: string[],
  signal: AbortSignal | undefined,
): Promise<{ rtoMs: number; tablesChecked: number }> {
  const started = Date.now();
  let tablesChecked = 0;
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
        ...(input.onProgress ? { onProgress: input.onProgress } : {}),
        ...(signal ? { signal } : {}),
      });
      if (signal?.aborted)
        throw new TidemarkError('Interrupted', `drill of snapshot ${input.snapshot.id.slice(0, 12)} interrupted`);
      const observed = await server.countRows(reservation.database);
      const what = `snapshot ${input.snapshot.id.slice(0, 12)}${database ? ` database "${database}"` : ''}`;
      const differences = countMismatches(input.snapshot.objects ? outcome.expected : undefined, observed);
      if (differences.length)
        throw new TidemarkError(
          'VerificationFailed',
          `the restored copy of ${what} differs from what the backup recorded: ${differences.join('; ')}`,
        );
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
  return { rtoMs: Date.now() - started, tablesChecked };
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
 * How the restored counts differ from the recorded ones: tables missing, tables not in the backup,
 * different row counts (at most 20 named). No record at all (a backup taken before counts were
 * recorded) is a difference too: a drill that cannot check proves nothing.
 */
export function countMismatches(recorded: ObjectCount[] | undefined, observed: ObjectCount[]): string[] {
  if (recorded === undefined) return ['the backup recorded no table counts to check against'];
  const expected = new Map(recorded.map((o) => [o.name, o.records]));
  const differences: string[] = [];
  for (const { name, records } of observed) {
    const before = expected.get(name);
    if (before === undefined) differences.push(`${name}: ${records} rows restored, not in the backup`);
    else if (before !== records) differences.push(`${name}: ${records} rows restored, ${before} recorded`);
    expected.delete(name);
  }
  for (const [name, records] of expected) differences.push(`${name}: missing, ${records} rows recorded`);
  return differences.length > 20 ? [...differences.slice(0, 20), `and ${differences.length - 20} more`] : differences;
}
