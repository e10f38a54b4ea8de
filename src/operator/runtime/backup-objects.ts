import type { BackupStatus } from '../../api/backup.ts';
import type { Backup } from '../../api/kinds.ts';
import type { Resources } from './resources.ts';

type ObjectCounts = NonNullable<BackupStatus['objects']>;

/**
 * The record counts of Backups, read from the API server (the cache leaves them out: runtime/cached.ts).
 * A finished Backup's counts never change, so they are remembered by uid and resourceVersion, the
 * `limit` most recently read.
 */
export class BackupObjects {
  private readonly known = new Map<string, ObjectCounts | undefined>();

  constructor(
    private readonly resources: Resources,
    private readonly limit = 4096,
  ) {}

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
