import { TidemarkError } from '../../errors.ts';
import type { BlobInfo, Storage } from './storage.ts';

/**
 * `before`: the crash comes before the Nth write or delete reaches the storage; `after`: it comes once
 * that call has done its work (the process died before it heard the answer).
 */
export type CrashMode = 'before' | 'after';

/**
 * A simulated process crash for crash-point tests (the way kopia's crash tests use its fault-injecting
 * blob storage): the Nth write or delete, counted over every storage wrapped by one CrashPoint, throws,
 * and from then on every call of any kind throws, as if the process had died there. A test runs an
 * operation with a crash at each N in turn (N = 0 never crashes: a dry run that lists the writes), waits for `settled`, and opens the storage unwrapped, as the
 * restarted process would.
 */
export class CrashPoint {
  /** The writes and deletes so far (`put index/…`), the crashing one included. */
  readonly writes: string[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  crashed = false;

  constructor(
    private readonly at: number,
    private readonly mode: CrashMode,
  ) {}

  wrap(storage: Storage): Storage {
    const read = async <T>(run: () => Promise<T>): Promise<T> => {
      this.throwIfCrashed(storage);
      return this.track(run());
    };
    const write = async (what: string, run: () => Promise<void>): Promise<void> => {
      this.throwIfCrashed(storage);
      this.writes.push(what);
      const call = this.writes.length;
      if (call !== this.at) return this.track(run());
      this.crashed = true;
      if (this.mode === 'after') await this.track(run());
      throw crash(storage, `${what} (write ${call}, ${this.mode})`);
    };
    const point = this;
    return {
      description: storage.description,
      get: (name, range) => read(() => storage.get(name, range)),
      stat: (name) => read(() => storage.stat(name)),
      put: (name, data) => write(`put ${name}`, () => storage.put(name, data)),
      delete: (name) => write(`delete ${name}`, () => storage.delete(name)),
      ensureContainer: () => write('ensureContainer', () => storage.ensureContainer()),
      async *list(prefix: string): AsyncIterable<BlobInfo> {
        for await (const blob of storage.list(prefix)) {
          point.throwIfCrashed(storage);
          yield blob;
        }
      },
    };
  }

  /** Resolves once no call that reached a wrapped storage is still running. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }

  private throwIfCrashed(storage: Storage): void {
    if (this.crashed) throw crash(storage, 'a call after the crash');
  }
}

function crash(storage: Storage, what: string): TidemarkError {
  return new TidemarkError('Internal', `${storage.description}: simulated crash at ${what}`);
}
