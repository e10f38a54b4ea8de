import { setTimeout as sleep } from 'node:timers/promises';
import type { TidemarkError } from '../../errors.ts';
import type { BlobInfo, Storage } from './storage.ts';

/** `listItem` counts blobs yielded by `list`, to fail a listing midway. */
export type Operation = 'get' | 'put' | 'stat' | 'list' | 'listItem' | 'delete' | 'ensureContainer';

export interface Fault {
  /** Which call of the operation the fault hits, from 1 over the wrapper's life; default: the next call. */
  call?: number;
  /** How many calls in a row it hits; default 1. */
  times?: number;
  /** Waits this long first, then fails or lets the call through. */
  delayMs?: number;
  /** Thrown instead of calling the wrapped storage, so a failed `put` writes nothing, as if the writer crashed. */
  error?: TidemarkError;
  /** Call the wrapped storage, then throw `error`, as if the answer was lost (a `put` has written the blob). */
  answerLost?: boolean;
}

export interface FaultyStorage extends Storage {
  inject(operation: Operation, fault: Fault): void;
  /** How many times `operation` was called so far. */
  calls(operation: Operation): number;
  /** How many injected faults have calls still to hit. */
  pending(): number;
}

/** A fault injector for tests (kopia's blobtesting/faulty.go): wraps a storage, failing or delaying chosen calls. */
export function faulty(storage: Storage): FaultyStorage {
  const counts = new Map<Operation, number>();
  const faults: Array<{ operation: Operation; first: number; last: number; fault: Fault }> = [];
  const calls = (operation: Operation) => counts.get(operation) ?? 0;

  /** Counts the call and applies its fault: throws, delays, or returns an error to throw after the call. */
  const enter = async (operation: Operation): Promise<TidemarkError | undefined> => {
    const call = calls(operation) + 1;
    counts.set(operation, call);
    const hit = faults.find((f) => f.operation === operation && f.first <= call && call <= f.last)?.fault;
    if (!hit) return undefined;
    if (hit.delayMs) await sleep(hit.delayMs);
    if (hit.error && !hit.answerLost) throw hit.error;
    return hit.error;
  };

  const through = async <T>(operation: Operation, run: () => Promise<T>): Promise<T> => {
    const after = await enter(operation);
    const result = await run();
    if (after) throw after;
    return result;
  };

  return {
    description: storage.description,
    inject(operation, fault) {
      const first = fault.call ?? calls(operation) + 1;
      faults.push({ operation, first, last: first + (fault.times ?? 1) - 1, fault });
    },
    calls,
    pending: () => faults.filter((f) => f.last > calls(f.operation)).length,
    get: (name, range) => through('get', () => storage.get(name, range)),
    put: (name, data) => through('put', () => storage.put(name, data)),
    stat: (name) => through('stat', () => storage.stat(name)),
    delete: (name) => through('delete', () => storage.delete(name)),
    ensureContainer: () => through('ensureContainer', () => storage.ensureContainer()),
    async *list(prefix: string): AsyncIterable<BlobInfo> {
      await enter('list');
      for await (const blob of storage.list(prefix)) {
        await enter('listItem');
        yield blob;
      }
    },
  };
}
