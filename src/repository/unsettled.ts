/**
 * The promises a producer started and that have not settled yet, so that a failing operation can wait for
 * all of its work before it returns (nothing left running, or rejecting unhandled, behind it).
 */
export class Unsettled {
  private readonly work = new Set<Promise<unknown>>();

  /** Counts `work` until it settles; returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.work.add(work);
    const done = () => this.work.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once every tracked promise has settled, also those started while waiting. */
  async settled(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }
}
