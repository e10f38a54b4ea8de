import { PassThrough } from 'node:stream';
import { isCode, TidemarkError } from '../errors.ts';
import type { ProgressListener } from '../repository/progress.ts';
import type { Repository } from '../repository/repository.ts';
import { restoreStream } from '../repository/restore.ts';
import type { Snapshot } from '../repository/snapshot.ts';
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
  env: NodeJS.ProcessEnv;
  onProgress?: ProgressListener;
  /** Stops a database restore part-way; the target is left as it was. */
  signal?: AbortSignal;
}

export interface RestoreOutcome {
  /** Counts read back from the target after the restore. */
  restored: ObjectCount[];
  /** The backup's counts for the same objects. */
  expected: ObjectCount[];
  skipped: Skipped[];
  durationMs: number;
}

/** Restores a snapshot into a database or a directory, then reads the counts back to compare with the backup's. */
export async function runRestore(request: RestoreRequest): Promise<RestoreOutcome> {
  const started = Date.now();
  const { repository, snapshot } = request;
  const location = parseSourceUrl(request.targetUrl);
  const progress = request.onProgress ? { onProgress: request.onProgress } : {};
  if (location.kind === 'volume') {
    await restoreVolume(repository, snapshot, location.path, request.mode, progress);
    const expected = snapshot.objects ?? [];
    return { restored: expected, expected, skipped: [], durationMs: Date.now() - started };
  }
  if (location.databases === 'all' || location.databases.length !== 1)
    throw new TidemarkError(
      'InvalidArgument',
      `restore target ${request.targetUrl}: name exactly one database to restore into`,
    );
  const stream = streamToRestore(snapshot, request.database);
  const target = openDatabase(location, request.env);
  const data = new PassThrough();
  const [feeding, restoring] = await Promise.allSettled([
    restoreStream(repository, snapshot, data, stream.name, progress).catch((error: unknown) => {
      data.destroy(error as Error);
      throw error;
    }),
    target
      .restore(data, {
        database: location.databases[0] as string,
        mode: request.mode,
        expected: stream.expected,
        ...(request.postRestoreSQL ? { postRestoreSQL: request.postRestoreSQL } : {}),
        ...(request.scriptRole ? { scriptRole: request.scriptRole } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      })
      .catch((error: unknown) => {
        data.destroy(); // so the reading side ends too
        throw error;
      }),
  ]);
  // The cause, not its echo: a snapshot that cannot be read fails with the repository's own code (the target
  // then only sees its input fail); otherwise the target's error (when the client fails, reading the
  // snapshot only sees its output closed, an Internal error).
  const readFailure = feeding.status === 'rejected' ? feeding.reason : undefined;
  if (readFailure && !isCode(readFailure, 'Internal')) throw readFailure;
  if (restoring.status === 'rejected') throw restoring.reason;
  if (readFailure) throw readFailure;
  const result = restoring.value;
  return {
    restored: result.objects,
    expected: stream.expected,
    skipped: result.skipped,
    durationMs: Date.now() - started,
  };
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
