import { randomBytes } from 'node:crypto';
import { type Dir, close as fsClose, fstat as fsFstat, open as fsOpen, read as fsRead, type Stats } from 'node:fs';
import { type FileHandle, mkdir, open, opendir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { type ErrorCode, TidemarkError, withCleanup } from '../../errors.ts';
import { fdCall } from '../fd-call.ts';
import { type BlobInfo, type Leftover, type Storage, storageError } from './storage.ts';

const validName = /^[a-z0-9_.-]+(\/[a-z0-9_.-]+)*$/;
const validPrefix = /^[a-z0-9/_.-]*$/;
/** Temporary files carry a `~`, which no blob name has, so `list` skips leftovers of interrupted puts. */
const tempMarker = '~';

/**
 * Blobs as files under `rootDir`; folders in names are directories. `put` writes a temporary file beside the
 * target and renames it over, so readers see the old blob or the new one. With `fsync`, the data and the
 * directory entry are flushed to disk before `put` returns.
 */
export class FileStorage implements Storage {
  readonly description: string;

  constructor(
    private readonly rootDir: string,
    private readonly options: { fsync?: boolean } = {},
  ) {
    this.description = pathToFileURL(rootDir).href;
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const path = this.pathOf('get', name);
    try {
      if (!range) return await readFile(path);
      // Descriptor calls, not a FileHandle: a backup reads every parent tree through here, and a FileHandle's
      // open, stat, read and close cost the walk's main thread about twice as much.
      const fd = await fdCall<number>((done) => fsOpen(path, 'r', done));
      try {
        const buffer = Buffer.allocUnsafe(range.length);
        let read = 0;
        while (read < range.length) {
          const at = read;
          const bytesRead = await fdCall<number>((done) =>
            fsRead(fd, buffer, at, range.length - at, range.offset + at, done),
          );
          if (bytesRead === 0) {
            const { size } = await fdCall<Stats>((done) => fsFstat(fd, done));
            if (range.offset + range.length > size) {
              const reason = `range ${range.offset}+${range.length} is past the end (${size} bytes)`;
              throw storageError(this, 'InvalidArgument', 'get', name, reason);
            }
            throw storageError(this, 'Corrupt', 'get', name, 'blob shrank while being read');
          }
          read += bytesRead;
        }
        return buffer;
      } finally {
        fsClose(fd, () => {});
      }
    } catch (error) {
      throw await this.mapError('get', name, error);
    }
  }

  async put(name: string, data: Buffer): Promise<void> {
    await this.write('put', name, (file) => file.writeFile(data));
  }

  /** Like `put`, from a stream; the file is readable by its owner only (mode 0600). */
  async putStream(name: string, data: Readable): Promise<number> {
    return this.write(
      'put',
      name,
      async (file) => {
        let bytes = 0;
        for await (const chunk of data) {
          await file.write(chunk as Buffer);
          bytes += (chunk as Buffer).length;
        }
        return bytes;
      },
      0o600,
    );
  }

  location(name: string): string {
    return this.pathOf('location', name);
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.pathOf('stat', name));
      return info.isFile() ? { name, size: info.size } : undefined;
    } catch (error) {
      const mapped = await this.mapError('stat', name, error);
      if (mapped.code === 'NotFound') return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    if (!validPrefix.test(prefix) || prefix.split('/').includes('..'))
      throw storageError(this, 'InvalidArgument', 'list', prefix, 'not a valid blob name prefix');
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    let dir: Dir;
    try {
      dir = await opendir(join(this.rootDir, folder));
    } catch (error) {
      const mapped = await this.mapError('list', prefix, error);
      if (mapped.code === 'NotFound') return;
      throw mapped;
    }
    try {
      yield* this.walk(dir, folder, prefix);
    } catch (error) {
      throw await this.mapError('list', prefix, error);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await unlink(this.pathOf('delete', name));
    } catch (error) {
      const mapped = await this.mapError('delete', name, error);
      if (mapped.code !== 'NotFound') throw mapped;
    }
  }

  /** Temporary files of puts that never finished (a killed writer), anywhere under the root. */
  async *leftovers(): AsyncIterable<Leftover> {
    try {
      yield* this.findLeftovers('');
    } catch (error) {
      throw await this.mapError('list', '', error);
    }
  }

  async ensureContainer(): Promise<void> {
    try {
      await mkdir(this.rootDir, { recursive: true });
    } catch (error) {
      throw await this.mapError('ensureContainer', '', error);
    }
  }

  /** Fills a new temporary file beside the blob's, then renames it over the blob. */
  private async write<T>(
    operation: string,
    name: string,
    fill: (file: FileHandle) => Promise<T>,
    mode?: number,
  ): Promise<T> {
    const path = this.pathOf(operation, name);
    const temp = join(dirname(path), `.${randomBytes(8).toString('hex')}${tempMarker}`);
    try {
      const file = await open(temp, 'wx', mode).catch(async (error: NodeJS.ErrnoException) => {
        // The common case needs no mkdir; the root itself is never created here (that is ensureContainer's job).
        if (error.code !== 'ENOENT' || !(await this.rootExists())) throw error;
        await mkdir(dirname(path), { recursive: true });
        return open(temp, 'wx', mode);
      });
      const result = await closing(file, async () => {
        const filled = await fill(file);
        if (this.options.fsync) await file.sync();
        return filled;
      });
      await rename(temp, path);
      if (this.options.fsync) await syncDirectory(dirname(path));
      return result;
    } catch (error) {
      await rm(temp, { force: true });
      throw await this.mapError(operation, name, error);
    }
  }

  /** Yields the files in `dir` (the folder `folder` of names) and below whose names start with `prefix`. */
  private async *walk(dir: Dir, folder: string, prefix: string): AsyncGenerator<BlobInfo> {
    for await (const entry of dir) {
      if (entry.name.includes(tempMarker)) continue;
      const name = folder + entry.name;
      const path = join(this.rootDir, name);
      // Entries deleted while we walk are skipped, not reported as errors.
      if (entry.isDirectory() && `${name}/`.startsWith(prefix)) {
        const subdir = await opendir(path).catch(unlessMissing);
        if (subdir) yield* this.walk(subdir, `${name}/`, prefix);
      } else if (entry.isFile() && name.startsWith(prefix)) {
        const info = await stat(path).catch(unlessMissing);
        if (info) yield { name, size: info.size };
      }
    }
  }

  private async *findLeftovers(folder: string): AsyncGenerator<Leftover> {
    const dir = await opendir(join(this.rootDir, folder)).catch(unlessMissing);
    if (!dir) return;
    for await (const entry of dir) {
      const name = folder + entry.name;
      const path = join(this.rootDir, name);
      if (entry.isDirectory()) yield* this.findLeftovers(`${name}/`);
      else if (entry.name.includes(tempMarker)) {
        const info = await stat(path).catch(unlessMissing);
        if (info) yield { name, size: info.size, modified: info.mtime, remove: () => rm(path, { force: true }) };
      }
    }
  }

  private pathOf(operation: string, name: string): string {
    if (!validName.test(name) || name.split('/').some((part) => part === '.' || part === '..'))
      throw storageError(this, 'InvalidArgument', operation, name, 'not a valid blob name');
    return join(this.rootDir, name);
  }

  private rootExists(): Promise<boolean> {
    return stat(this.rootDir).then(
      (info) => info.isDirectory(),
      () => false,
    );
  }

  /** A missing file is NotFound, unless the whole root directory is missing: then it is ContainerMissing. */
  private async mapError(operation: string, name: string, error: unknown): Promise<TidemarkError> {
    if (error instanceof TidemarkError) return error;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(code)) {
      if (!(await this.rootExists()))
        return storageError(this, 'ContainerMissing', operation, name, 'no such directory', error);
      return storageError(this, 'NotFound', operation, name, 'not found', error);
    }
    const reason = error instanceof Error ? error.message : String(error);
    return storageError(this, errorCodes[code] ?? 'Internal', operation, name, reason, error);
  }
}

const errorCodes: Record<string, ErrorCode> = {
  EACCES: 'AccessDenied',
  EPERM: 'AccessDenied',
  EROFS: 'AccessDenied',
  EAGAIN: 'Transient',
  EBUSY: 'Transient',
  EMFILE: 'Transient',
  ENFILE: 'Transient',
  ETIMEDOUT: 'Transient',
};

function unlessMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

async function syncDirectory(path: string): Promise<void> {
  await closing(await open(path, 'r'), (dir) => dir.sync());
}

/** Runs `work` on an open file, then closes it; a close failing after `work` failed never hides the work's error. */
function closing<T>(file: FileHandle, work: (file: FileHandle) => Promise<T>): Promise<T> {
  return withCleanup(
    () => work(file),
    () => file.close(),
    () => {},
  );
}
