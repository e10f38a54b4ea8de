import { setTimeout as sleep } from 'node:timers/promises';
import { TidemarkError, withContext } from '../../errors.ts';
import type { BlobInfo, Storage } from './storage.ts';

export interface RetryEvent {
  operation: string;
  /** The blob, or the prefix for `list`. */
  name: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: TidemarkError;
}

export interface RetryOptions {
  /** Tries per operation, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: (event: RetryEvent) => void;
  /** Injected by tests. */
  sleep?: (ms: number) => Promise<unknown>;
  random?: () => number;
}

/**
 * Wraps a storage so that operations failing with a `retryable` error are tried again, with exponential backoff
 * and jitter. The final error keeps its code; when it came after retries, its message says how many attempts
 * were made (backend messages already name the operation, the blob and the storage). A `list` that fails midway
 * starts over and skips the names it already yielded; a listing that made progress gets its attempts back.
 */
export function retrying(storage: Storage, options: RetryOptions = {}): Storage {
  const { attempts = 5, baseDelayMs = 200, maxDelayMs = 5000, onRetry, random = Math.random } = options;
  const wait = options.sleep ?? sleep;

  /** Waits before the next attempt, or throws the final error when there is none. */
  const backoff = async (operation: string, name: string, attempt: number, error: unknown): Promise<void> => {
    if (!(error instanceof TidemarkError))
      throw withContext(`${storage.description}: ${operation}${name ? ` ${name}` : ''}`, error);
    if (!error.retryable || attempt >= attempts)
      throw attempt === 1 ? error : withContext(`after ${attempt} attempts`, error);
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    onRetry?.({ operation, name, attempt, delayMs, error });
    await wait(delayMs);
  };

  const call = async <T>(operation: string, name: string, run: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        await backoff(operation, name, attempt, error);
      }
    }
  };

  return {
    description: storage.description,
    get: (name, range) => call('get', name, () => storage.get(name, range)),
    put: (name, data) => call('put', name, () => storage.put(name, data)),
    stat: (name) => call('stat', name, () => storage.stat(name)),
    delete: (name) => call('delete', name, () => storage.delete(name)),
    ensureContainer: () => call('ensureContainer', '', () => storage.ensureContainer()),
    leftovers: storage.leftovers?.bind(storage),
    async *list(prefix: string): AsyncIterable<BlobInfo> {
      const seen = new Set<string>();
      let attempt = 1;
      for (;;) {
        const seenBefore = seen.size;
        try {
          for await (const blob of storage.list(prefix)) {
            if (seen.has(blob.name)) continue;
            seen.add(blob.name);
            yield blob;
          }
          return;
        } catch (error) {
          if (seen.size > seenBefore) attempt = 1;
          await backoff('list', prefix, attempt, error);
          attempt++;
        }
      }
    },
  };
}
