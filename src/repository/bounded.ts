/**
 * Admission control for work started by a producer: at most `maxTasks` at once, and their declared bytes within
 * `maxBytes` (a task declaring more than the whole budget is admitted alone, so nothing waits forever). Admission
 * is first come, first served: a large task waiting holds back smaller ones behind it.
 */
export class Bounded {
  private tasks = 0;
  private bytes = 0;
  private readonly waiting: { bytes: number; admit: () => void }[] = [];

  constructor(
    readonly maxTasks: number,
    readonly maxBytes: number,
  ) {
    if (!(maxTasks >= 1)) throw new RangeError(`maxTasks must be at least 1, not ${maxTasks}`);
  }

  /** Resolves once a task of `bytes` may start; the caller must `release(bytes)` when it ends. */
  acquire(bytes: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.admit(bytes);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ bytes, admit: resolve }));
  }

  release(bytes: number): void {
    this.tasks--;
    this.bytes -= bytes;
    for (let next = this.waiting[0]; next && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.admit(next.bytes);
      next.admit();
    }
  }

  /** Waits for admission, then starts `task`; returns its promise in a box (awaiting the box waits only to start). */
  async start<T>(bytes: number, task: () => Promise<T>): Promise<{ result: Promise<T> }> {
    await this.acquire(bytes);
    let result: Promise<T>;
    try {
      result = task();
    } catch (error) {
      result = Promise.reject(error);
    }
    return { result: result.finally(() => this.release(bytes)) };
  }

  private fits(bytes: number): boolean {
    return this.tasks === 0 || (this.tasks < this.maxTasks && this.bytes + bytes <= this.maxBytes);
  }

  private admit(bytes: number): void {
    this.tasks++;
    this.bytes += bytes;
  }
}

/**
 * `fn` over every item, at most `limit` at once; the outcomes in the items' order (rejections as outcomes, so the
 * caller decides in order which failure matters).
 */
export async function settledInOrder<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i] as T) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
