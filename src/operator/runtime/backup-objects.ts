import type { BackupStatus } from '../../api/backup.ts';
import type { Backup } from '../../api/kinds.ts';
import type { Resources } from './resources.ts';

type ObjectCounts = NonNullable<BackupStatus['objects']>;

/**
 * The record counts of Backups, which the cache leaves out (runtime/cached.ts): each Backup's total,
 * noted as the informer receives it (one number per Backup), and the per-object counts read from the
 * API server for the few Backups that need them. A Backup's counts are written once, with its result,
 * so they are remembered by uid and resourceVersion, the `limit` most recently read.
 */
export class BackupObjects {
  private readonly known = new Map<string, ObjectCounts | undefined>();
  private readonly totals = new Map<string, number>();

  constructor(
    private readonly resources: Resources,
    private readonly limit = 4096,
  ) {}

  /** Notes the total of `backup` as received from the API server (status.objects still there). */
  noteTotal(backup: Backup): void {
    const key = `${backup.metadata.namespace}/${backup.metadata.name}`;
    const objects = backup.status?.objects;
    if (objects)
      this.totals.set(
        key,
        objects.reduce((sum, o) => sum + o.records, 0),
      );
    else this.totals.delete(key);
  }

  forget(backup: Backup): void {
    this.totals.delete(`${backup.metadata.namespace}/${backup.metadata.name}`);
  }

  /** The records `backup` counted, all objects together; undefined when it has no counts. */
  total(backup: Backup): number | undefined {
    return this.totals.get(`${backup.metadata.namespace}/${backup.metadata.name}`);
  }

  /** The counts of the Backup `name` in `namespace`; undefined when it has none or is gone. */
  async of(namespace: string, name: string, cached?: Backup): Promise<ObjectCounts | undefined> {
    const key = cached ? `${cached.metadata.uid}/${cached.metadata.resourceVersion}` : undefined;
    if (key && this.known.has(key)) return this.known.get(key);
    const backup = await this.resources.get<Backup>('backups', namespace, name);
    const objects = backup?.status?.objects;
    const read = backup ? `${backup.metadata.uid}/${backup.metadata.resourceVersion}` : undefined;
    if (read) {
      this.known.set(read, objects);
      if (this.known.size > this.limit) this.known.delete(this.known.keys().next().value as string);
    }
    return objects;
  }
}
