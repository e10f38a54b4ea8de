import type { Storage } from './storage.ts';

/** A storage that records what is read through it: replication reads (bench/replication.ts, copy tests). */
export interface CountingStorage extends Storage {
  /** Every `get` since creation or the last `reset`: blob name and bytes returned. */
  readonly reads: ReadonlyArray<{ name: string; bytes: number }>;
  /** Bytes returned by `get` for blobs whose name starts with `prefix` (all blobs when absent). */
  bytesRead(prefix?: string): number;
  reset(): void;
}

export function counting(storage: Storage): CountingStorage {
  let reads: { name: string; bytes: number }[] = [];
  return {
    description: storage.description,
    get reads() {
      return reads;
    },
    bytesRead: (prefix = '') => reads.reduce((sum, r) => sum + (r.name.startsWith(prefix) ? r.bytes : 0), 0),
    reset() {
      reads = [];
    },
    async get(name, range) {
      const data = await storage.get(name, range);
      reads.push({ name, bytes: data.length });
      return data;
    },
    put: (name, data) => storage.put(name, data),
    stat: (name) => storage.stat(name),
    list: (prefix) => storage.list(prefix),
    delete: (name) => storage.delete(name),
    ensureContainer: () => storage.ensureContainer(),
  };
}
