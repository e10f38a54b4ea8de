import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../errors.ts';
import { type BackupOptions, backupTree } from '../repository/backup.ts';
import type { Repository } from '../repository/repository.ts';
import { type RestoreOptions, restoreTree } from '../repository/restore.ts';
import type { Snapshot } from '../repository/snapshot.ts';
import type { RestoreMode, Skipped } from './source.ts';

/**
 * Document volumes: the mounted directory of a PVC (or of its CSI snapshot), read-only. Files that
 * vanish or change while being read are reported in the snapshot's `skipped`, never fail the run;
 * the record counts are files per top-level directory.
 */
export function backupVolume(
  repository: Repository,
  path: string,
  options: Omit<BackupOptions, 'source'> & { source?: string },
): Promise<Snapshot> {
  return backupTree(repository, path, { ...options, source: options.source ?? `file://${path}` });
}

/**
 * Restores into `target`: `new` refuses a non-empty directory (changing nothing), `replace` empties it first.
 * Returns the file metadata the target refused (extended attributes, owners), per path.
 */
export async function restoreVolume(
  repository: Repository,
  snapshot: Snapshot,
  target: string,
  mode: RestoreMode,
  options: RestoreOptions = {},
): Promise<Skipped[]> {
  const existing = await readdir(target).catch(() => []);
  if (existing.length > 0) {
    if (mode !== 'replace')
      throw new TidemarkError(
        'InvalidArgument',
        `restore target ${target} is not empty (${existing.length} entries); use mode replace to overwrite it`,
      );
    await Promise.all(existing.map((name) => rm(join(target, name), { recursive: true, force: true })));
  }
  return restoreTree(repository, snapshot, target, options);
}
