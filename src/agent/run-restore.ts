import { PassThrough } from 'node:stream';
import { TidemarkError } from '../errors.ts';
import type { ProgressListener } from '../repository/progress.ts';
import type { Repository } from '../repository/repository.ts';
import { restoreStream } from '../repository/restore.ts';
import type { Snapshot } from '../repository/snapshot.ts';
import { liveSources, refuseLiveSource } from '../sources/live-source.ts';
import { openDatabase, parseSourceUrl } from '../sources/open.ts';
import type { ObjectCount, RestoreMode, ScriptRole, Skipped } from '../sources/source.ts';
import { restoreVolume } from '../sources/volume.ts';

export interface RestoreRequest {
  repository: Repository;
  snapshot: Snapshot;
  /** `postgresql://user@host:port/newdb`, `mysql://...`, or `file:///path`. */
  targetUrl: string;
  mode: RestoreMode;
  /** Which database of a multi-database snapshot; needed only when it holds several. */
  database?: string;
  postRestoreSQL?: string;
  /** The role postRestoreSQL runs as; absent: the target URL's user. */
  scriptRole?: ScriptRole;
  /** Create the roles a database backup names that the target server lacks (NOLOGIN), instead of failing. */
  createMissingRoles?: boolean;
  env: NodeJS.ProcessEnv;
  onProgress?: ProgressListener;
  /** Aborted on SIGTERM/SIGINT: the target's client stops and cleans up, and the restore fails as Interrupted. */
  signal?: AbortSignal;
}

export interface RestoreOutcome {
  /** Counts read back from the target after the restore. */
  restored: ObjectCount[];
  /** The backup's counts for the same objects. */
  expected: ObjectCount[];
  skipped: Skipped[];
  /** What the user should know although the restore succeeded: counts that differ from the backup's, cleanups. */
  warnings: string[];
  durationMs: number;
}

/** Restores a snapshot into a database or a directory, then reads the counts back to compare with the backup's. */
export async function runRestore(request: RestoreRequest): Promise<RestoreOutcome> {
  const started = Date.now();
  const { repository, snapshot } = request;
  const location = parseSourceUrl(request.targetUrl);
  const progress = request.onProgress ? { onProgress: request.onProgress } : {};
  if (location.kind === 'volume') {
    const skipped = await restoreVolume(repository, snapshot, location.path, request.mode, progress);
    const expected = snapshot.objects ?? [];
    return { restored: expected, expected, skipped, warnings: [], durationMs: Date.now() - started };
  }
  if (location.databases === 'all' || location.databases.length !== 1)
    throw new TidemarkError(
      'InvalidArgument',
      `restore target ${request.targetUrl}: name exactly one database to restore into`,
    );
  const stream = streamToRestore(snapshot, request.database);
  const target = openDatabase(location, request.env);
  await refuseLiveSource({ ...location, description: target.description }, liveSources(request.env));
  const data = new PassThrough();
  const [streamed, restored] = await Promise.allSettled([
    restoreStream(repository, snapshot, data, stream.name, progress).catch((error: unknown) => {
      data.destroy(error as Error);
      throw error;
    }),
    target
      .restore(data, {
        database: location.databases[0] as string,
        mode: request.mode,
        ...(request.postRestoreSQL ? { postRestoreSQL: request.postRestoreSQL } : {}),
        ...(request.scriptRole ? { scriptRole: request.scriptRole } : {}),
        ...(request.createMissingRoles ? { createMissingRoles: true } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      })
      .catch((error: unknown) => {
        data.destroy(); // a target that failed before reading it all must not leave the stream waiting for ever
        throw error;
      }),
  ]);
  // The database's error first: once it fails, the stream feeding it fails too ("output closed"), and a
  // stream that fails first (a damaged chunk) reaches the target as the reason its input ended. Unless
  // all the target knows is that its input ended early: then the stream's own error says why.
  if (restored.status === 'rejected')
    throw streamed.status === 'rejected' && endedEarly(restored.reason) ? streamed.reason : restored.reason;
  if (streamed.status === 'rejected') throw streamed.reason;
  const result = restored.value;
  return {
    restored: result.objects,
    expected: stream.expected,
    skipped: result.skipped,
    warnings: [...(result.warnings ?? []), ...countDifferences(stream.expected, result.objects)],
    durationMs: Date.now() - started,
  };
}

/** A target that failed only because the stream it read was cut off (Node's premature close). */
function endedEarly(error: unknown): boolean {
  return (error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * The objects whose restored count differs from the backup's, as warnings. Counts check a restore the
 * database accepted: they never fail it. No restored counts at all means they could not be told (the
 * target says why), not that every table came back empty.
 */
export function countDifferences(expected: ObjectCount[], restored: ObjectCount[]): string[] {
  if (restored.length === 0 || expected.length === 0) return [];
  const backup = new Map(expected.map((o) => [o.name, o.records]));
  const differences: string[] = [];
  for (const { name, records } of restored) {
    const before = backup.get(name);
    if (before !== records) differences.push(`${name}: ${records} restored, ${before ?? 'none'} in the backup`);
    backup.delete(name);
  }
  for (const [name, records] of backup) differences.push(`${name}: not restored, ${records} in the backup`);
  return differences.length ? [`restored row counts differ from the backup's: ${differences.join('; ')}`] : [];
}

/** The dump stream to restore and the backup's counts for it (names without the database prefix). */
function streamToRestore(snapshot: Snapshot, database: string | undefined): { name?: string; expected: ObjectCount[] } {
  const objects = snapshot.objects ?? [];
  if (database) {
    const prefix = `${database}.`;
    const several = objects.some((o) => !o.name.startsWith(prefix));
    const expected = several
      ? objects.filter((o) => o.name.startsWith(prefix)).map((o) => ({ ...o, name: o.name.slice(prefix.length) }))
      : objects;
    return { name: `${database}.sql`, expected };
  }
  return { expected: objects };
}
