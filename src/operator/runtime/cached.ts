// What the informer caches keep of an object. With history (hundreds of thousands of Backups), a cached
// Backup's size is the operator's memory: only what the controllers read on every pass is kept, and a
// value many Backups repeat is kept once.
import type { Backup } from '../../api/kinds.ts';

/** managedFields: no controller reads them, and they are a large part of a small object. */
export function withoutManagedFields<T extends { metadata?: object }>(object: T): T {
  if (!object.metadata || !('managedFields' in object.metadata)) return object;
  const { managedFields: _, ...metadata } = object.metadata as { managedFields?: unknown };
  return { ...object, metadata };
}

/**
 * One instance of each value that many Backups repeat: names of namespaces, policies, sources and
 * repositories, phases and reasons, schedule slots. JSON parsing makes a new string for every value of
 * every object; shared, a Backup's repeated values cost a pointer each. Values that are unique per Backup
 * (names, uids, snapshot ids) are not shared. Cleared when full, so a long-running operator's table stays
 * bounded whatever it has seen.
 */
export class SharedStrings {
  private readonly table = new Map<string, string>();

  constructor(private readonly limit = 100_000) {}

  get size(): number {
    return this.table.size;
  }

  of<T extends string | undefined>(value: T): T {
    if (value === undefined) return value;
    const known = this.table.get(value);
    if (known !== undefined) return known as T;
    if (this.table.size >= this.limit) this.table.clear();
    this.table.set(value, value);
    return value;
  }

  /** `record` with the string values at `keys` shared; other values as they are. */
  in<T extends object>(record: T, keys: readonly (keyof T)[]): T {
    const copy = { ...record };
    for (const key of keys) {
      const value = copy[key];
      if (typeof value === 'string') copy[key] = this.of(value) as T[keyof T];
    }
    return copy;
  }
}

const BACKUP_STRINGS = new SharedStrings();

/**
 * A Backup as the cache keeps it: without managedFields and without status.objects, the per-table (per
 * directory) record counts, tens to thousands per Backup and most of its size. The two readers of the
 * counts (the daily report, a restore's expected counts) read them from the API server, for the few
 * Backups they need (BackupObjects). Repeated values are shared (SharedStrings); the primary's copy of
 * the snapshot id and completion time is the status's own.
 */
export function cachedBackup(backup: Backup, strings: SharedStrings = BACKUP_STRINGS): Backup {
  const { metadata, spec, status } = withoutManagedFields(backup);
  const kept: Backup = {
    ...strings.in(backup, ['apiVersion', 'kind']),
    metadata: {
      ...strings.in(metadata, ['namespace', 'creationTimestamp']),
      ...(metadata.labels ? { labels: sharedValues(metadata.labels, strings) } : {}),
      ...(metadata.finalizers ? { finalizers: metadata.finalizers.map((f) => strings.of(f)) } : {}),
    },
    spec: strings.in(spec, ['policy', 'source', 'type', 'scheduledTime']),
  };
  if (!status) return kept;
  const { objects: _, ...rest } = status;
  return {
    ...kept,
    status: {
      ...strings.in(rest, ['phase', 'size']),
      ...(rest.conditions
        ? {
            conditions: rest.conditions.map((c) => ({
              ...strings.in(c, ['type', 'status', 'reason']),
              lastTransitionTime: sameAs(c.lastTransitionTime, rest.completionTime),
            })),
          }
        : {}),
      ...(rest.repositories
        ? {
            repositories: rest.repositories.map((r) => ({
              ...strings.in(r, ['repository', 'role', 'state']),
              ...(r.snapshotId ? { snapshotId: sameAs(r.snapshotId, rest.snapshotId) } : {}),
              ...(r.completionTime ? { completionTime: sameAs(r.completionTime, rest.completionTime) } : {}),
            })),
          }
        : {}),
    },
  };
}

/** `other` where it equals `value`: the same string once in memory instead of twice. */
const sameAs = <T extends string>(value: T, other: string | undefined): T => (value === other ? (other as T) : value);

function sharedValues(labels: Record<string, string>, strings: SharedStrings): Record<string, string> {
  const shared: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) shared[key] = strings.of(value);
  return shared;
}
