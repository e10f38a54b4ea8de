import type { Readable } from 'node:stream';
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

/** How long one storage operation keeps retrying by default: rides out two minutes of unavailability. */
export const DEFAULT_RETRY_BUDGET_MS = 120_000;

export interface RetryOptions {
  /**
   * How long one operation keeps retrying, from its first attempt: the longest outage it rides out. A retry
   * whose wait would end past the budget is not made. 0: no retries.
   */
  budgetMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: (event: RetryEvent) => void;
  /** Injected by tests. */
  sleep?: (ms: number) => Promise<unknown>;
  now?: () => number;
  random?: () => number;
}

/**
 * Wraps a storage so that operations failing with a `retryable` error are tried again, with exponential backoff
 * and jitter, for as long as the operation's time budget lasts (each operation has its own). The final error
 * keeps its code; when it came after retries, its message says how many attempts were made over how long
 * (backend messages already name the operation, the blob and the storage). A `list` that fails midway starts
 * over and skips the names it already yielded; a listing that made progress gets its budget back.
 */
export function retrying(storage: Storage, options: RetryOptions = {}): Storage {
  const {
    budgetMs = DEFAULT_RETRY_BUDGET_MS,
    baseDelayMs = 200,
    maxDelayMs = 10_000,
    onRetry,
    now = Date.now,
    random = Math.random,
  } = options;
  const wait = options.sleep ?? sleep;

  /** Waits before the next attempt, or throws the final error when the budget does not allow one. */
  const backoff = async (
    operation: string,
    name: string,
    attempt: number,
    started: number,
    error: unknown,
  ): Promise<void> => {
    if (!(error instanceof TidemarkError))
      throw withContext(`${storage.description}: ${operation}${name ? ` ${name}` : ''}`, error);
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    const elapsedMs = now() - started;
    if (!error.retryable || elapsedMs + delayMs > budgetMs)
      throw attempt === 1
        ? error
        : withContext(`after ${attempt} attempts over ${Math.round(elapsedMs / 1000)} s`, error);
    onRetry?.({ operation, name, attempt, delayMs, error });
    await wait(delayMs);
  };

  const call = async <T>(operation: string, name: string, run: () => Promise<T>): Promise<T> => {
    const started = now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        await backoff(operation, name, attempt, started, error);
      }
    }
  };

  const putStream = storage.putStream?.bind(storage);
  const presign = storage.presign?.bind(storage);
  return {
    description: storage.description,
    get: (name, range) => call('get', name, () => storage.get(name, range)),
    put: (name, data) => call('put', name, () => storage.put(name, data)),
    stat: (name) => call('stat', name, () => storage.stat(name)),
    delete: (name) => call('delete', name, () => storage.delete(name)),
    ensureContainer: () => call('ensureContainer', '', () => storage.ensureContainer()),
    leftovers: storage.leftovers?.bind(storage),
    ...(putStream && {
      putStream: (name, data, options) => call('put', name, () => once(putStream(name, data, options), data)),
    }),
    ...(presign && { presign: (name, seconds) => call('presign', name, () => presign(name, seconds)) }),
    ...(storage.location && { location: storage.location.bind(storage) }),
    async *list(prefix: string): AsyncIterable<BlobInfo> {
      const seen = new Set<string>();
      let attempt = 1;
      let started = now();
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
          if (seen.size > seenBefore) {
            attempt = 1;
            started = now();
          }
          await backoff('list', prefix, attempt, started, error);
          attempt++;
        }
      }
    },
  };
}

/**
 * A stream cannot be read twice, so a streamed put is tried again only when it failed before reading any of it
 * (a refused connection on its first request); once its data was read, its error is final.
 */
async function once<T>(putting: Promise<T>, data: Readable): Promise<T> {
  try {
    return await putting;
  } catch (error) {
    if (error instanceof TidemarkError && error.retryable && data.readableDidRead)
      throw new TidemarkError(error.code, error.message, { cause: error, retryable: false });
    throw error;
  }
}
