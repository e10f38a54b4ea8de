// What the informer caches keep of an object. With history (hundreds of thousands of Backups), a cached
// Backup's size is the operator's memory: only what the controllers read on every pass is kept.
import type { Backup } from '../../api/kinds.ts';

/** managedFields: no controller reads them, and they are a large part of a small object. */
export function withoutManagedFields<T extends { metadata?: object }>(object: T): T {
  if (!object.metadata || !('managedFields' in object.metadata)) return object;
  const { managedFields: _, ...metadata } = object.metadata as { managedFields?: unknown };
  return { ...object, metadata };
}

/**
 * A Backup as the cache keeps it: without managedFields and without status.objects, the per-table (per
 * directory) record counts, tens to thousands per Backup and most of its size. The two readers of the
 * counts (the daily report, a restore's expected counts) read them from the API server, for the few
 * Backups they need (BackupObjects).
 */
export function cachedBackup(backup: Backup): Backup {
  const slim = withoutManagedFields(backup);
  if (!slim.status?.objects) return slim;
  const { objects: _, ...status } = slim.status;
  return { ...slim, status };
}
