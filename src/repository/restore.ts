import { chmod, type FileHandle, lchown, link, mkdir, open, readdir, symlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { TidemarkError, withCleanup, withContext } from '../errors.ts';
import type { ChunkStore } from './chunk-store.ts';
import { type FileMetadataIo, openFileMetadataIo } from './file-metadata.ts';
import type { ChunkId } from './format.ts';
import { InOrder } from './in-order.ts';
import { whileHolding } from './lock.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeName, decodeTarget, decodeTree, type TreeEntry } from './tree.ts';

export interface RestoreOptions {
  onProgress?: ProgressListener;
  /** Chunks fetched ahead of the one being written. */
  readAhead?: number;
}

/** File metadata the target would not take (see RestoreRun.setMetadata), per path relative to the target. */
export interface NotRestored {
  path: string;
  reason: string;
}

/**
 * Restores a snapshot's tree into `target`, which must be empty or missing (nothing is overwritten). Returns the
 * metadata the target refused (extended attributes it does not support, owners it does not allow); the content
 * is always restored or the restore fails.
 */
export async function restoreTree(
  repository: Repository,
  snapshot: Snapshot,
  target: string,
  options: RestoreOptions = {},
): Promise<NotRestored[]> {
  await mkdir(target, { recursive: true });
  if ((await readdir(target)).length > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `restore target ${target} is not empty; restore into an empty directory`,
    );
  return underLock(repository, snapshot, async () => {
    const metadata = await openFileMetadataIo();
    const run = new RestoreRun(
      repository.chunkStore(),
      new ProgressMeter('restore', options.onProgress, snapshot.summary.logicalBytes),
      options.readAhead ?? 8,
      metadata,
    );
    try {
      await run.directory(snapshot.root, Buffer.from(target));
    } finally {
      metadata.close();
    }
    run.meter.done();
    return run.notRestored(target.length);
  });
}

/** The names of a stream snapshot's streams (`<db>.sql`, and the roles' `globals.sql`), in tree order. */
export async function streamNames(repository: Repository, snapshot: Snapshot): Promise<string[]> {
  const tree = decodeTree(await repository.chunkStore().get(snapshot.root));
  return tree.entries.filter((e) => e.type === 'file').map((e) => decodeName(e).toString());
}

/** Writes one stream of a stream snapshot (the only one, or the one named) to `out`. */
export async function restoreStream(
  repository: Repository,
  snapshot: Snapshot,
  out: Writable,
  name?: string,
  options: RestoreOptions = {},
): Promise<void> {
  await underLock(repository, snapshot, async () => {
    const store = repository.chunkStore();
    const tree = decodeTree(await store.get(snapshot.root));
    const files = tree.entries.filter((e) => e.type === 'file');
    const entry =
      name === undefined
        ? files.length === 1
          ? files[0]
          : undefined
        : files.find((e) => decodeName(e).toString() === name);
    if (!entry)
      throw new TidemarkError(
        'NotFound',
        `snapshot ${snapshot.id.slice(0, 12)} has ${name === undefined ? `${files.length} streams; name one` : `no stream ${name}`} (streams: ${files.map((e) => decodeName(e).toString()).join(', ')})`,
      );
    const run = new RestoreRun(
      store,
      new ProgressMeter('restore', options.onProgress, entry.size),
      options.readAhead ?? 8,
    );
    await run.writeContent(entry.content ?? [], streamSink(out));
    run.meter.done();
  });
}

/**
 * Reads the regular files of a tree snapshot, in tree order, each into the stream `open` returns for it
 * (paths relative to the root, `/`-separated, names as UTF-8), respecting its back-pressure; the stream is
 * ended once the file's content is written. The other names of a hard link read the same content.
 * Symlinks and directories are not files and are skipped.
 */
export async function readTreeFiles(
  repository: Repository,
  snapshot: Snapshot,
  open: (path: string, entry: TreeEntry) => Writable,
  options: RestoreOptions = {},
): Promise<void> {
  await underLock(repository, snapshot, async () => {
    const store = repository.chunkStore();
    const run = new RestoreRun(
      store,
      new ProgressMeter('export', options.onProgress, snapshot.summary.logicalBytes),
      options.readAhead ?? 8,
    );
    const linked = new Map<number, ChunkId[]>();
    const walk = async (treeId: ChunkId, prefix: string): Promise<void> => {
      for (const entry of decodeTree(await store.get(treeId)).entries) {
        const path = prefix + decodeName(entry).toString('utf8');
        if (entry.type === 'dir') await walk(entry.subtree as ChunkId, `${path}/`);
        if (entry.type !== 'file') continue;
        if (entry.link !== undefined && !linked.has(entry.link)) linked.set(entry.link, entry.content ?? []);
        const content = entry.link !== undefined ? (linked.get(entry.link) as ChunkId[]) : (entry.content ?? []);
        await run.writeContent(content, streamSink(open(path, entry)));
      }
    };
    await walk(snapshot.root, '');
    run.meter.done();
  });
}

/** Holds a shared lock (and reads the index again under it), so no prune deletes what is being read. */
export async function underLock<T>(repository: Repository, snapshot: Snapshot, restore: () => Promise<T>): Promise<T> {
  const lock = await repository.lock(false);
  return whileHolding(lock, async () => {
    await repository.requireSnapshot(snapshot);
    return restore();
  });
}

class RestoreRun {
  private readonly linkTargets = new Map<number, Buffer>();
  private readonly refused: { path: Buffer; reason: string }[] = [];

  constructor(
    private readonly store: ChunkStore,
    readonly meter: ProgressMeter,
    private readonly readAhead: number,
    private readonly metadata?: FileMetadataIo,
  ) {}

  async directory(treeId: ChunkId, path: Buffer): Promise<void> {
    const tree = decodeTree(await this.store.get(treeId));
    for (const entry of tree.entries) {
      const child = Buffer.concat([path, Buffer.from('/'), decodeName(entry)]);
      await this.entry(entry, child);
    }
  }

  private async entry(entry: TreeEntry, path: Buffer): Promise<void> {
    if (entry.type === 'dir') {
      await mkdir(path);
      await this.directory(entry.subtree as ChunkId, path);
    } else if (entry.type === 'symlink') {
      await symlink(decodeTarget(entry), path);
    } else if (entry.link !== undefined && this.linkTargets.has(entry.link)) {
      await link(this.linkTargets.get(entry.link) as Buffer, path);
      return; // shares the inode: metadata was set with the first name
    } else {
      const file = await open(path, 'wx', 0o600);
      await withCleanup(
        () => this.writeContent(entry.content ?? [], sparseFileSink(file)),
        () => file.close(),
        () => {},
      );
      this.meter.add(0, 1);
      if (entry.link !== undefined) this.linkTargets.set(entry.link, path);
    }
    await this.setMetadata(entry, path);
  }

  /**
   * Owner, extended attributes, permissions, then times (last: the others change ctime, and a directory's
   * times only after its children). Attributes go before chmod, which may take away the write permission
   * setting them needs.
   */
  private async setMetadata(entry: TreeEntry, path: Buffer): Promise<void> {
    if (process.getuid?.() === 0)
      await lchown(path, entry.uid, entry.gid).catch((error: unknown) =>
        this.refuse(path, `owner ${entry.uid}:${entry.gid}`, error),
      );
    for (const xattr of entry.xattrs ?? []) {
      await this.metadata
        ?.setXattr(path, { name: xattr.name, value: Buffer.from(xattr.valueB64, 'base64') })
        .catch((error: unknown) => this.refuse(path, `extended attribute ${xattr.name}`, error));
    }
    if (entry.type !== 'symlink') await chmod(path, entry.mode);
    const mtimeNs = BigInt(entry.mtimeNs);
    await this.metadata?.setTimes(path, BigInt(entry.atimeNs ?? mtimeNs), mtimeNs, entry.type === 'symlink');
  }

  /**
   * Notes metadata the target refuses (a filesystem without extended attributes, an owner it does not allow);
   * any other failure (no space, I/O) fails the restore.
   */
  private refuse(path: Buffer, what: string, error: unknown): void {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTSUP' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'E2BIG' && code !== 'ERANGE')
      throw withContext(`restoring ${what} of ${path.toString('utf8')}`, error);
    this.refused.push({ path, reason: `${what} not restored (${code})` });
  }

  /** What the target refused, paths relative to it (`/docs/a`). */
  notRestored(targetLength: number): NotRestored[] {
    return this.refused.map(({ path, reason }) => ({ path: path.subarray(targetLength).toString('utf8'), reason }));
  }

  /** Fetches chunks ahead (in parallel) and hands them to `sink` in order. */
  async writeContent(content: ChunkId[], sink: ContentSink): Promise<void> {
    const fetching = new InOrder<Buffer>();
    let next = 0;
    const fill = () => {
      while (fetching.size < this.readAhead && next < content.length)
        fetching.add(this.store.get(content[next++] as ChunkId));
    };
    let size = 0;
    try {
      fill();
      while (fetching.size > 0) {
        const data = (await fetching.next()) as Buffer;
        fill();
        this.meter.add(data.length);
        await sink.write(data);
        size += data.length;
      }
      await sink.end(size);
    } catch (error) {
      // Never leave output that looks complete: the sink is abandoned, the error surfaces.
      sink.abort();
      await fetching.drain();
      throw withContext('restoring', error);
    }
  }
}

/** Where restored content goes, in order. */
interface ContentSink {
  /** The next bytes of the content. */
  write(data: Buffer): Promise<void>;
  /** All content written; `size` bytes in all. */
  end(size: number): Promise<void>;
  abort(): void;
}

/** A stream (stdout, a pipe to a database client), respecting its back-pressure. */
function streamSink(out: Writable): ContentSink {
  return {
    async write(data) {
      if (out.destroyed)
        throw new TidemarkError('Internal', 'the restore output was closed before the restore finished');
      if (!out.write(data)) await drained(out);
    },
    async end() {
      out.end();
      await finished(out);
    },
    abort: () => out.destroy(),
  };
}

/** Holes are made at this granularity (the usual filesystem block). */
const HOLE_BLOCK = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK);

/**
 * A new file, written sparse: blocks of zeros (HOLE_BLOCK, aligned in the file) are skipped, so they become holes,
 * and the size is set at the end. Chunks end anywhere, so a chunk's last partial block waits for the next chunk
 * and every decision is made on a whole block. A file that was sparse at backup comes back sparse; zeros that
 * were allocated come back as holes too (same content, less space).
 */
function sparseFileSink(file: FileHandle): ContentSink {
  let pending = Buffer.alloc(0);
  let pendingOffset = 0; // always a multiple of HOLE_BLOCK
  const writeBlocks = async (data: Buffer, offset: number) => {
    for (let start = 0; start < data.length; ) {
      let end = start;
      while (end < data.length && !isZeroBlock(data, end)) end += HOLE_BLOCK;
      if (end > start) await writeAll(file, data.subarray(start, Math.min(end, data.length)), offset + start);
      start = end;
      while (start < data.length && isZeroBlock(data, start)) start += HOLE_BLOCK;
    }
  };
  return {
    async write(data) {
      const joined = pending.length ? Buffer.concat([pending, data]) : data;
      const whole = joined.length - (joined.length % HOLE_BLOCK);
      await writeBlocks(joined.subarray(0, whole), pendingOffset);
      pending = Buffer.from(joined.subarray(whole));
      pendingOffset += whole;
    },
    async end(size) {
      await writeBlocks(pending, pendingOffset);
      await file.truncate(size);
    },
    abort: () => {},
  };
}

/** True when the block at data[at] is whole and zero (a partial block, the file's last, is always written). */
function isZeroBlock(data: Buffer, at: number): boolean {
  return at + HOLE_BLOCK <= data.length && data.subarray(at, at + HOLE_BLOCK).equals(ZEROS);
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Resolves on 'drain'; rejects when the output closes or fails first (a consumer that gave up). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', settle);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () =>
      settle(new TidemarkError('Internal', 'the restore output was closed before the restore finished'));
    out.once('drain', onDrain);
    out.once('close', onClose);
    out.once('error', settle);
  });
}
