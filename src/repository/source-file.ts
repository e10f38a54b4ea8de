import { type BigIntStats, close, closeSync, fstatSync, read, readSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { fdCall } from './fd-call.ts';
import { NoAtimeOpener } from './no-atime.ts';
import { checkSameRegularFile, fstatBigint, ReplacedError } from './source-directory.ts';

/** Read buffer of a file (reused): a file up to this size takes one read. */
const READ_BUFFER = 256 * 1024;
/** Reads of the rest of a larger file. */
const LARGE_READ = 1024 * 1024;
/** Large read buffers kept for reuse once their bytes are stored (16 MiB). */
const LARGE_READS_KEPT = 16;

/**
 * A file's bytes for the chunker, whose chunks are views of them until the chunk store has copied them:
 * `stored(bytes)` says the file's first `bytes` bytes are stored, so the buffers that held them can be read
 * into again. Without it every 1 MiB read of a large file was a fresh buffer (2 GiB of garbage for a 2 GiB backup).
 */
export interface FileBytes extends AsyncIterable<Buffer> {
  stored(bytes: number): void;
}

/**
 * Reads the files of a tree being backed up: without moving their atimes (no-atime.ts), never through a symlink
 * or into a FIFO, and only the regular file the walk listed (source-directory.ts: else ReplacedError). Each read
 * returns the file's status after it, for the "changed while being read" check (`changedWhileRead`).
 */
export class SourceFileReader {
  /** Files smaller than this are one chunk (the chunker cuts none before its minimum) and fit one read. */
  readonly wholeBelow: number;
  private readonly opener = new NoAtimeOpener();
  /** The buffer of `readWhole`. */
  private readonly wholeBuffer = Buffer.allocUnsafeSlow(READ_BUFFER);
  /** First-read buffers of `stream`, reused from file to file. */
  private readonly streamBuffers: Buffer[] = [];
  /** Large read buffers whose bytes are stored, for the next reads of any file. */
  private readonly largeBuffers: Buffer[] = [];

  constructor(chunkerMin: number) {
    this.wholeBelow = Math.min(chunkerMin, READ_BUFFER);
  }

  /**
   * A file smaller than `wholeBelow` read whole with synchronous calls (open, read, fstat, close), and its status
   * after the read (fstat: the file read, wherever its name points now); undefined when one read did not bring
   * all of it (it grew or came short), to be read again as a stream.
   */
  readWhole(path: Buffer, stat: BigIntStats): { data: Buffer; after: BigIntStats } | undefined {
    let fd: number;
    try {
      fd = this.opener.openSync(path, Number(stat.uid));
    } catch (error) {
      return replacedIfSymlink(error);
    }
    try {
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, this.wholeBuffer, 0, this.wholeBuffer.length, null);
      } catch (error) {
        // A FIFO or a socket now (opened without waiting: EAGAIN) is the replacement, not a read error.
        checkSameRegularFile(stat, fstatSync(fd, { bigint: true }));
        throw error;
      }
      const after = fstatSync(fd, { bigint: true });
      checkSameRegularFile(stat, after);
      if (bytesRead < Number(stat.size) || bytesRead >= this.wholeBelow) return undefined;
      // A copy: the buffer is the next file's, and the chunk store may copy the data after a wait.
      return { data: Buffer.from(this.wholeBuffer.subarray(0, bytesRead)), after };
    } finally {
      closeSync(fd);
    }
  }

  /** A file read as a stream by `consume`, and its status after (an lstat of the name). */
  async stream<T>(
    path: Buffer,
    stat: BigIntStats,
    consume: (data: FileBytes) => Promise<T>,
  ): Promise<{ result: T; after: BigIntStats }> {
    const fd = await this.opener.open(path, Number(stat.uid)).catch(replacedIfSymlink);
    const buffer = this.streamBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER);
    let result: T;
    try {
      checkSameRegularFile(stat, await fstatBigint(fd));
      result = await consume(new FileReads(fd, buffer, Number(stat.size), this.largeBuffers));
    } catch (error) {
      await fdCall((done) => close(fd, done)).catch(() => {});
      throw error;
    } finally {
      this.streamBuffers.push(buffer);
    }
    // The descriptor closes while the file is looked at again.
    const [after] = await Promise.all([lstat(path, { bigint: true }), fdCall((done) => close(fd, done))]);
    return { result, after };
  }
}

/** Whether a file's status after it was read says it changed while read (or its content is not `size` bytes). */
export function changedWhileRead(before: BigIntStats, after: BigIntStats, size: number): boolean {
  return after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs || BigInt(size) !== before.size;
}

/**
 * A file's bytes: first into `buffer` (reused from file to file; a file that fits takes one read), the rest into
 * large buffers taken from `free` (or new), given back there once `stored` passes their last byte. A short read
 * at or past the size seen by lstat is the end; before it, reading goes on to a 0 read.
 */
class FileReads implements FileBytes {
  /** Large buffers read into and not yet given back, with the file offset their bytes end at. */
  private readonly held: { buffer: Buffer; end: number }[] = [];

  constructor(
    private readonly fd: number,
    private readonly buffer: Buffer,
    private readonly expected: number,
    private readonly free: Buffer[],
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    let total = 0;
    let target = this.buffer;
    for (;;) {
      const bytesRead = await fdCall<number>((done) => read(this.fd, target, 0, target.length, null, done));
      if (bytesRead === 0) return;
      total += bytesRead;
      if (target !== this.buffer) this.held.push({ buffer: target, end: total });
      yield target.subarray(0, bytesRead);
      if (bytesRead < target.length && total >= this.expected) return;
      target = this.free.pop() ?? Buffer.allocUnsafeSlow(LARGE_READ);
    }
  }

  stored(bytes: number): void {
    while (this.held.length > 0 && (this.held[0] as { end: number }).end <= bytes) {
      const { buffer } = this.held.shift() as { buffer: Buffer };
      if (this.free.length < LARGE_READS_KEPT) this.free.push(buffer);
    }
  }
}

/** ELOOP opening a name listed as a file: a symlink has its name now (the open never follows one). */
function replacedIfSymlink(error: unknown): never {
  throw (error as NodeJS.ErrnoException).code === 'ELOOP' ? new ReplacedError('a file') : error;
}
