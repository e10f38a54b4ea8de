/** Progress of a long operation, reported every so often to whoever shows it (terminal line, JSON log, status). */
export interface Progress {
  operation: string;
  bytesDone: number;
  bytesTotal?: number;
  files: number;
  uploadedBytes: number;
  elapsedMs: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export type ProgressListener = (progress: Progress) => void;

/** Counts bytes and files and calls the listener at most every `intervalMs` (and once at the end). */
export class ProgressMeter {
  private readonly started = Date.now();
  private lastReport = 0;
  bytesDone = 0;
  files = 0;
  uploadedBytes = 0;

  constructor(
    private readonly operation: string,
    private readonly listener?: ProgressListener,
    private readonly bytesTotal?: number,
    private readonly intervalMs = 1000,
  ) {}

  add(bytes: number, files = 0): void {
    this.bytesDone += bytes;
    this.files += files;
    const now = Date.now();
    if (this.listener && now - this.lastReport >= this.intervalMs) {
      this.lastReport = now;
      this.listener(this.snapshot());
    }
  }

  uploaded(bytes: number): void {
    this.uploadedBytes += bytes;
  }

  done(): Progress {
    const progress = this.snapshot();
    this.listener?.(progress);
    return progress;
  }

  private snapshot(): Progress {
    const elapsedMs = Date.now() - this.started;
    const bytesPerSecond = elapsedMs > 0 ? Math.round((this.bytesDone * 1000) / elapsedMs) : 0;
    const remaining = this.bytesTotal !== undefined ? Math.max(0, this.bytesTotal - this.bytesDone) : undefined;
    return {
      operation: this.operation,
      bytesDone: this.bytesDone,
      ...(this.bytesTotal !== undefined ? { bytesTotal: this.bytesTotal } : {}),
      files: this.files,
      uploadedBytes: this.uploadedBytes,
      elapsedMs,
      bytesPerSecond,
      ...(remaining !== undefined && bytesPerSecond > 0 ? { etaSeconds: Math.ceil(remaining / bytesPerSecond) } : {}),
    };
  }
}
