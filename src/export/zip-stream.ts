import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { Zip, ZipDeflate } from 'fflate';

/** Input is handed to the compressor in pieces of about this size. */
const BATCH = 64 * 1024;
const ZIP_EARLIEST = Date.UTC(1980, 0, 2);
const ZIP_LATEST = Date.UTC(2099, 11, 31);

/**
 * A ZIP archive written as a stream (`output`), one entry at a time, with the output's back-pressure:
 * `write` waits while the reader (an upload) is behind, so an export never sits whole in memory.
 * Entries are deflated; names are UTF-8 (fflate sets the language-encoding flag for non-ASCII names).
 * No ZIP64: an entry or archive past 4 GiB fails (fflate does not write ZIP64 records).
 */
export class ZipStream {
  readonly output = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  private readonly zip: Zip;
  private entry: ZipDeflate | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: Error | undefined;

  constructor() {
    // The writer learns of a failure from `drained` (and the reader from its stream): an output nobody
    // reads any more must not also throw its error as an uncaught 'error' event.
    this.output.on('error', () => {});
    this.zip = new Zip((error, chunk, final) => {
      if (error) {
        this.failure = error;
        this.output.destroy(error);
        return;
      }
      this.output.write(chunk);
      if (final) this.output.end();
    });
  }

  /** Starts an entry (ending the previous one). */
  open(name: string, modified: Date): void {
    if (this.failure) throw this.failure;
    this.close();
    this.entry = new ZipDeflate(name, { level: 6 });
    this.entry.mtime = new Date(Math.min(Math.max(modified.getTime(), ZIP_EARLIEST), ZIP_LATEST)); // DOS dates
    this.zip.add(this.entry);
  }

  /** Adds to the current entry; resolves once the output has room again. */
  async write(data: Buffer): Promise<void> {
    this.add(data);
    await this.drained();
  }

  /** Adds without waiting (for many small records from a synchronous parser); call `drained` after. */
  add(data: Buffer): void {
    if (this.failure) throw this.failure;
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes >= BATCH) this.flush(false);
  }

  async drained(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.output.writableNeedDrain) await once(this.output, 'drain');
  }

  /** Ends the current entry, if any. */
  close(): void {
    if (!this.entry) return;
    this.flush(true);
    this.entry = undefined;
  }

  /** Ends the archive (the central directory follows); the output ends once read. */
  finish(): void {
    this.close();
    this.zip.end();
  }

  /** Stops the archive: the output fails with `error` (an upload reading it aborts). */
  abort(error: Error): void {
    this.failure ??= error;
    this.zip.terminate();
    this.output.destroy(error);
  }

  private flush(final: boolean): void {
    const data = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    (this.entry as ZipDeflate).push(data, final);
  }
}
