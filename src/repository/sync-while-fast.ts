/** Synchronous calls per window; the median of each window decides whether they go on. */
const WINDOW = 64;
/** While calls are slow, one decision in this many is still a synchronous call: a probe of whether they are fast again. */
const PROBE_EVERY = 64;

/**
 * Whether to keep making file system calls synchronously. On a local filesystem with its metadata and pages
 * cached, an lstat, or the open, read, fstat and close of a small file, takes a few microseconds in the kernel,
 * while each asynchronous call costs the main thread far more (a request, a promise, the hand-off to libuv's
 * thread pool and the wake-up after): most of a small-files backup was that. Where calls block instead (a cold
 * disk, a network filesystem), synchronous calls would stall the event loop one at a time: once the median call
 * of a window takes more than `slowCallMs`, the caller goes asynchronous, but one decision in PROBE_EVERY stays a
 * synchronous probe, and once a window of probes is fast again so are the calls (a stall of the disk or the
 * machine does not make the rest of a long backup slow). The median, not the mean: on a busy machine the process
 * is preempted now and then in the middle of a call, which makes a few calls slow, not most.
 */
export class SyncWhileFast {
  private enabled = true;
  private readonly window = new Float64Array(WINDOW);
  private calls = 0;
  private decisions = 0;

  constructor(
    private readonly slowCallMs = 0.25,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether the next calls are to be made synchronously (and timed with `time`). */
  useSync(): boolean {
    if (this.enabled) return true;
    this.decisions = (this.decisions + 1) % PROBE_EVERY;
    return this.decisions === 0;
  }

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
    this.enabled = (this.window.slice().sort()[WINDOW / 2] ?? 0) <= this.slowCallMs;
  }
}
