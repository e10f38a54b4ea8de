/** Synchronous calls per window; the median of each window decides whether they go on. */
const WINDOW = 64;

/**
 * Whether to keep making file system calls synchronously. On a local filesystem with its metadata and pages
 * cached, an lstat, or the open, read, fstat and close of a small file, takes a few microseconds in the kernel,
 * while each asynchronous call costs the main thread far more (a request, a promise, the hand-off to libuv's
 * thread pool and the wake-up after): most of a small-files backup was that. Where calls block instead (a cold
 * disk, a network filesystem), synchronous calls would stall the event loop one at a time: once the median call
 * of a window takes more than `slowCallMs`, `enabled` turns false for good and the caller goes asynchronous.
 * The median, not the mean: on a busy machine the process is preempted now and then in the middle of a call,
 * which makes a few calls slow, not most.
 */
export class SyncWhileFast {
  enabled = true;
  private readonly window = new Float64Array(WINDOW);
  private calls = 0;

  constructor(
    private readonly slowCallMs = 0.25,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Runs `fn`, `calls` system calls (at least one), and notes the time each took on average. */
  time<T>(calls: number, fn: () => T): T {
    const start = this.now();
    try {
      return fn();
    } finally {
      this.note((this.now() - start) / Math.max(1, calls));
    }
  }

  private note(ms: number): void {
    this.window[this.calls++] = ms;
    if (this.calls < WINDOW) return;
    this.calls = 0;
    if ((this.window.slice().sort()[WINDOW / 2] ?? 0) > this.slowCallMs) this.enabled = false;
  }
}
