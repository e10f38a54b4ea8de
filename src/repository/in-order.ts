/**
 * Work started ahead of its consumer, taken back in the order it was started. A task that fails
 * before its turn is held until then instead of surfacing as an unhandled rejection (which would
 * kill the process while the consumer is still awaiting an earlier task).
 */
export class InOrder<T> {
  private readonly queue: Promise<T>[] = [];

  get size(): number {
    return this.queue.length;
  }

  add(task: Promise<T>): void {
    task.catch(() => {});
    this.queue.push(task);
  }

  /** The oldest task's result; undefined when nothing is queued. */
  async next(): Promise<T | undefined> {
    return this.queue.shift();
  }

  /** Waits for every queued task to end, ignoring their results: call before giving up. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.queue.splice(0));
  }
}
