import { backupStreams } from '../repository/backup.ts';
import type { ProgressListener } from '../repository/progress.ts';
import type { Repository } from '../repository/repository.ts';
import type { Snapshot } from '../repository/snapshot.ts';
import { UnchangedScanner } from '../repository/unchanged-scanner.ts';
import { openDatabase, parseSourceUrl } from '../sources/open.ts';
import { backupVolume } from '../sources/volume.ts';

export interface BackupRequest {
  /** `postgresql://user@host:port/db`, `mysql://...`, or `file:///path` (a mounted volume). */
  sourceUrl: string;
  /**
   * What the snapshot records as its source, and how an incremental finds its parent. Defaults to the
   * URL; the operator passes `<namespace>/<policy>/<source>`, since every volume is mounted at /data.
   */
  sourceName?: string;
  allDatabases?: boolean;
  /** The repository, or its opening: an incremental of a volume lists the volume meanwhile (unchanged-scanner.ts). */
  repository: Repository | Promise<Repository>;
  type: 'full' | 'incremental';
  excludes?: string[];
  tags?: string[];
  /** Where passwords come from (PGPASSWORD, MYSQL_PWD). */
  env: NodeJS.ProcessEnv;
  onProgress?: ProgressListener;
}

/**
 * Backs up one source into the repository. A database is checked (credentials, reachability, the
 * databases exist) before anything is written, so a bad source leaves no snapshot behind. An
 * incremental continues the latest snapshot of the same source.
 */
export async function runBackup(request: BackupRequest): Promise<Snapshot> {
  const location = parseSourceUrl(request.sourceUrl, { allDatabases: request.allDatabases ?? false });
  const scanner =
    location.kind === 'volume' && request.type === 'incremental'
      ? UnchangedScanner.prescanning(location.path, request.excludes ?? [])
      : undefined;
  const repository = await Promise.resolve(request.repository).catch(async (error: unknown) => {
    await scanner?.close();
    throw error;
  });
  const common = {
    type: request.type,
    tags: request.tags ?? [],
    ...(request.onProgress ? { onProgress: request.onProgress } : {}),
  };
  if (location.kind === 'volume') {
    const source = request.sourceName ?? `file://${location.path}`;
    const parent = await latestOf(repository, source).catch(async (error: unknown) => {
      await scanner?.close();
      throw error;
    });
    return backupVolume(repository, location.path, {
      ...common,
      source,
      excludes: request.excludes ?? [],
      ...(parent ? { parent } : {}),
      ...(scanner ? { scanner } : {}),
    });
  }
  const database = openDatabase(location, request.env);
  await database.check();
  const dump = await database.dump();
  const source = request.sourceName ?? database.description;
  const parent = await latestOf(repository, source);
  return backupStreams(repository, dump.streams, {
    ...common,
    source,
    objects: () => dump.objects(),
    skipped: () => dump.skipped(),
    ...(parent ? { parent } : {}),
  });
}

async function latestOf(repository: Repository, source: string): Promise<Snapshot | undefined> {
  return (await repository.snapshots()).find((s) => s.source === source);
}
