import { closeSync, fchmodSync, fchownSync, ftruncateSync, openSync, write as writeAt, writeSync } from 'node:fs';
import { chmod, lchown, link, mkdir, readdir, symlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { TidemarkError, withContext } from '../errors.ts';
import type { ChunkReader } from './chunk-reader.ts';
import { type FileMetadataIo, openFileMetadataIo } from './file-metadata.ts';
import type { ChunkId } from './format.ts';
import { whileHolding } from './lock.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeName, decodeTarget, decodeTree, type TreeEntry } from './tree.ts';
import { Unsettled } from './unsettled.ts';

export interface RestoreOptions {
  onProgress?: ProgressListener;
}

/** File metadata the target would not take (see TreeRestore.setMetadata), per path relative to the target. */
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
    const run = new TreeRestore(
      repository.chunkStore().reader,
      new ProgressMeter('restore', options.onProgress, snapshot.summary.logicalBytes),
      metadata,
    );
    try {
      await run.restore(snapshot.root, Buffer.from(target));
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
    const { reader } = repository.chunkStore();
    const tree = decodeTree(await reader.get(snapshot.root));
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
    const meter = new ProgressMeter('restore', options.onProgress, entry.size);
    await writeInOrder(reader, meter, entry.content ?? [], streamSink(out));
    meter.done();
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
    const { reader } = repository.chunkStore();
    const meter = new ProgressMeter('export', options.onProgress, snapshot.summary.logicalBytes);
    const linked = new Map<number, ChunkId[]>();
    const walk = async (treeId: ChunkId, prefix: string): Promise<void> => {
      for (const entry of decodeTree(await reader.get(treeId)).entries) {
        const path = prefix + decodeName(entry).toString('utf8');
        if (entry.type === 'dir') await walk(entry.subtree as ChunkId, `${path}/`);
        if (entry.type !== 'file') continue;
        if (entry.link !== undefined && !linked.has(entry.link)) linked.set(entry.link, entry.content ?? []);
        const content = entry.link !== undefined ? (linked.get(entry.link) as ChunkId[]) : (entry.content ?? []);
        await writeInOrder(reader, meter, content, streamSink(open(path, entry)));
      }
    };
    await walk(snapshot.root, '');
    meter.done();
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

const SLASH = Buffer.from('/');
/** Subdirectories' trees read ahead of the walk, per directory being walked (twice this: one window ahead). */
const TREES_AHEAD = 4 * 1024 * 1024;

/** Work started, and its end (wrapped: an async function returning a bare promise would wait for it). */
interface Started {
  finished: Promise<unknown>;
}

/**
 * Restores a tree: directories are created as the walk reaches them, regular files' contents are written by a
 * ContentWriter (many files at once, chunks at their offsets), and each entry's metadata is set once its content
 * is complete; a directory's only once everything under it is (its times last).
 */
class TreeRestore {
  /** The first name of each hard link, once restored with its metadata. */
  private readonly linkTargets = new Map<number, Promise<Buffer>>();
  private readonly refused: { path: Buffer; reason: string }[] = [];
  /** Entries being finished (content, metadata, links), so a failed restore returns only once all have ended. */
  private readonly inFlight = new Unsettled();
  private readonly writer: ContentWriter;
  /** Owners are restored only by root (anyone else may give files away nowhere but to themselves). */
  private readonly asRoot = process.getuid?.() === 0;

  constructor(
    private readonly reader: ChunkReader,
    readonly meter: ProgressMeter,
    private readonly metadata: FileMetadataIo,
  ) {
    this.writer = new ContentWriter(reader, meter);
  }

  async restore(root: ChunkId, target: Buffer): Promise<void> {
    try {
      const everything = this.track((await this.walk(await this.reader.get(root), target)).finished);
      await this.writer.flush();
      await everything;
    } catch (error) {
      // Never leave work running behind a failed restore: files not yet written fail, the rest ends first.
      await this.writer.abort(error);
      await this.inFlight.settled();
      throw error;
    }
  }

  /**
   * Creates what `tree` holds under `path`, its subdirectories' trees read ahead (batched, TREES_AHEAD bytes at a
   * time); resolves when all is started (not finished: see Started).
   */
  private async walk(tree: Buffer, path: Buffer): Promise<Started> {
    const { entries } = decodeTree(tree);
    const subtrees = this.reader.inOrder(
      entries.flatMap((e) => (e.type === 'dir' ? [e.subtree as ChunkId] : [])),
      TREES_AHEAD,
    );
    const children: Promise<unknown>[] = [];
    try {
      for (const entry of entries) {
        const subtree = entry.type === 'dir' ? (await subtrees.next()).value : undefined;
        const started = await this.entry(entry, Buffer.concat([path, SLASH, decodeName(entry)]), subtree);
        children.push(this.track(started.finished));
      }
    } finally {
      await subtrees.return(undefined);
    }
    return { finished: Promise.all(children) };
  }

  private async entry(entry: TreeEntry, path: Buffer, subtree?: Buffer): Promise<Started> {
    if (entry.type === 'dir') {
      await mkdir(path);
      const contents = await this.walk(subtree as Buffer, path);
      return { finished: contents.finished.then(() => this.setMetadata(entry, path)) };
    }
    if (entry.type === 'symlink') {
      await symlink(decodeTarget(entry), path);
      await this.setMetadata(entry, path);
      return { finished: Promise.resolve() };
    }
    const first = entry.link === undefined ? undefined : this.linkTargets.get(entry.link);
    // Shares the inode: metadata was set with the first name.
    if (first) return { finished: first.then((existing) => link(existing, path)) };
    const { finished: written } = await this.writer.add(path, entry.content ?? [], (fd) =>
      this.setOnDescriptor(entry, path, fd),
    );
    const finished = written.then(() => this.setMetadata(entry, path, true));
    if (entry.link !== undefined) this.linkTargets.set(entry.link, this.track(finished.then(() => path)));
    return { finished };
  }

  private track<T>(work: Promise<T>): Promise<T> {
    return this.inFlight.track(work);
  }

  /**
   * A regular file's owner and, when no extended attribute has to go in between, permissions: on its descriptor,
   * before it is closed (a system call each, where a path-based call is a trip through the thread pool).
   */
  private setOnDescriptor(entry: TreeEntry, path: Buffer, fd: number): void {
    if (this.asRoot)
      try {
        fchownSync(fd, entry.uid, entry.gid);
      } catch (error) {
        this.refuse(path, `owner ${entry.uid}:${entry.gid}`, error);
      }
    if (!entry.xattrs?.length) fchmodSync(fd, entry.mode);
  }

  /**
   * Owner, extended attributes, permissions, then times (last: the others change ctime, and a directory's
   * times only after its children). Attributes go before chmod, which may take away the write permission
   * setting them needs. `onDescriptor`: what setOnDescriptor set is not set again.
   */
  private async setMetadata(entry: TreeEntry, path: Buffer, onDescriptor = false): Promise<void> {
    if (this.asRoot && !onDescriptor)
      await lchown(path, entry.uid, entry.gid).catch((error: unknown) =>
        this.refuse(path, `owner ${entry.uid}:${entry.gid}`, error),
      );
    for (const xattr of entry.xattrs ?? []) {
      await this.metadata
        .setXattr(path, { name: xattr.name, value: Buffer.from(xattr.valueB64, 'base64') })
        .catch((error: unknown) => this.refuse(path, `extended attribute ${xattr.name}`, error));
    }
    if (entry.type !== 'symlink' && !(onDescriptor && !entry.xattrs?.length)) await chmod(path, entry.mode);
    const mtimeNs = BigInt(entry.mtimeNs);
    await this.metadata.setTimes(path, BigInt(entry.atimeNs ?? mtimeNs), mtimeNs, entry.type === 'symlink');
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
}

const MiB = 1024 * 1024;
/** A batch is read once it names this many bytes of content or this many files (each may hold a descriptor). */
const BATCH_BYTES = 64 * MiB;
const BATCH_FILES = 1024;
/** Writes in flight at once, and the decoded bytes they may hold. */
const PARALLEL_WRITES = 64;
const WRITE_BYTES = 16 * MiB;

/** Before a new file is closed, with its descriptor: sets what can be set on it (owner, permissions). */
type BeforeClose = (fd: number) => void;

/**
 * A regular file being restored: its chunks land at their offsets, in any order. Opened on its first write (a
 * batch's files do not all hold a descriptor at once) and closed once complete; both are system calls made on
 * the spot, as are small writes: a trip through the thread pool costs more than any of them.
 */
class OutputFile {
  private fd: number | undefined;
  /** Chunks not yet written, plus one while its chunks are still being planned. */
  pending = 1;
  /** The content's size (sum of the chunks' lengths), known once planned. */
  size = 0;
  /** Where the last byte written so far ends; short of `size` when the content ends in holes. */
  extent = 0;
  readonly done: Promise<void>;
  private readonly settled = { resolve: () => {}, reject: (_error: unknown) => {} };
  private ended = false;

  constructor(
    readonly path: Buffer,
    private readonly beforeClose: BeforeClose,
  ) {
    this.done = new Promise((resolve, reject) => Object.assign(this.settled, { resolve, reject }));
    this.done.catch(() => {});
  }

  descriptor(): number {
    this.fd ??= openSync(this.path, 'wx', 0o600);
    return this.fd;
  }

  /** Sets the size (so trailing holes exist), what beforeClose sets, and closes: the content is complete. */
  complete(): void {
    const fd = this.descriptor();
    this.fd = undefined;
    try {
      if (this.extent < this.size) ftruncateSync(fd, this.size);
      this.beforeClose(fd);
    } finally {
      closeSync(fd);
    }
    this.ended = true;
    this.settled.resolve();
  }

  /** Gives up on the file (no write on it is in flight): closes it, leaving what was written. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (this.fd !== undefined)
      try {
        closeSync(this.fd);
      } catch {}
    this.fd = undefined;
    this.settled.reject(withContext(`restoring ${this.path.toString('utf8')}`, error));
  }
}

/** Content of many files, planned together so their chunks are read with few ranged reads. */
class Batch {
  /** Where each chunk goes: a chunk many files share is read once and written to each. */
  readonly targets = new Map<ChunkId, { file: OutputFile; offset: number }[]>();
  readonly files = new Set<OutputFile>();
  bytes = 0;

  get full(): boolean {
    return this.bytes >= BATCH_BYTES || this.files.size >= BATCH_FILES;
  }
}

/**
 * Writes regular files' contents: files are gathered into batches (one read while the next fills), each batch's
 * chunks read through the ChunkReader (one ranged read per run of a pack) and written at known offsets (the index
 * gives every chunk's length), many files and ranges at once. Memory: the reader's bound, WRITE_BYTES of decoded
 * chunks being written, and two batches' plans (at most BATCH_FILES files and BATCH_BYTES of chunks each).
 */
class ContentWriter {
  private batch = new Batch();
  private running: Promise<void> = Promise.resolve();
  private readonly writes = new Limiter(PARALLEL_WRITES, WRITE_BYTES);
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly reader: ChunkReader,
    private readonly meter: ProgressMeter,
  ) {}

  /** Plans a file's content (waiting while a batch is being read); `finished` once it is written and closed. */
  async add(path: Buffer, content: ChunkId[], beforeClose: BeforeClose): Promise<Started> {
    this.throwIfFailed();
    const file = new OutputFile(path, beforeClose);
    try {
      for (const id of content) {
        if (this.batch.full) await this.dispatch();
        const rawLength = this.reader.locate(id).rawLength;
        const targets = this.batch.targets.get(id);
        const target = { file, offset: file.size };
        if (targets) targets.push(target);
        else this.batch.targets.set(id, [target]);
        this.batch.files.add(file);
        this.batch.bytes += rawLength;
        file.size += rawLength;
        file.pending++;
      }
    } catch (error) {
      await this.writes.idle();
      file.fail(error);
      throw error;
    }
    this.written(file);
    return { finished: file.done };
  }

  /** Reads and writes what is planned, and waits for all of it. */
  async flush(): Promise<void> {
    await this.dispatch();
    await this.running;
    await this.writes.idle();
    this.throwIfFailed();
  }

  /** Stops: waits for the batch being read, and fails every file not complete. */
  async abort(error: unknown): Promise<void> {
    this.failure ??= { error };
    await this.running;
    await this.writes.idle();
    for (const file of this.batch.files) file.fail(error);
  }

  private async dispatch(): Promise<void> {
    const batch = this.batch;
    this.batch = new Batch();
    await this.running;
    this.throwIfFailed();
    this.running = this.run(batch);
  }

  private async run(batch: Batch): Promise<void> {
    try {
      await this.reader.read(batch.targets.keys(), async (id, data) => {
        for (const target of batch.targets.get(id) ?? []) {
          this.throwIfFailed();
          if (data.length <= SYNC_WRITE_MAX) await this.write(target.file, data, target.offset, true);
          else await this.writes.start(data.length, () => this.write(target.file, data, target.offset, false));
        }
      });
    } catch (error) {
      this.failure ??= { error };
    }
    await this.writes.idle();
    if (this.failure) for (const file of batch.files) file.fail(this.failure.error);
  }

  /** Writes a chunk's non-zero blocks (see nonZeroRuns); `now`: with system calls on this thread. */
  private async write(file: OutputFile, data: Buffer, offset: number, now: boolean): Promise<void> {
    try {
      const fd = file.descriptor();
      for (const [start, end] of nonZeroRuns(data, offset)) {
        const part = data.subarray(start, end);
        if (now) writeAllNow(fd, part, offset + start);
        else await writeAll(fd, part, offset + start);
        file.extent = Math.max(file.extent, offset + end);
      }
      this.meter.add(data.length);
    } catch (error) {
      this.failure ??= { error: withContext(`restoring ${file.path.toString('utf8')}`, error) };
      return;
    }
    this.written(file);
  }

  /** One more of the file's chunks is written (or its planning ended); the last completes it. */
  private written(file: OutputFile): void {
    if (--file.pending > 0) return;
    try {
      file.complete();
      this.meter.add(0, 1);
    } catch (error) {
      this.failure ??= { error };
      file.fail(error);
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** Runs tasks (which never reject) with at most `maxTasks` at once holding at most `maxBytes` (one may hold more). */
class Limiter {
  private active = 0;
  private bytes = 0;
  private waiting: (() => void)[] = [];

  constructor(
    private readonly maxTasks: number,
    private readonly maxBytes: number,
  ) {}

  /** Starts `task` once there is room (without waiting for it to end). */
  async start(bytes: number, task: () => Promise<void>): Promise<void> {
    while (this.active >= this.maxTasks || (this.active > 0 && this.bytes + bytes > this.maxBytes)) await this.change();
    this.active++;
    this.bytes += bytes;
    void task().finally(() => {
      this.active--;
      this.bytes -= bytes;
      for (const wake of this.waiting.splice(0)) wake();
    });
  }

  /** Resolves once no task runs. */
  async idle(): Promise<void> {
    while (this.active > 0) await this.change();
  }

  private change(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

/** Holes are made at this granularity (the usual filesystem block). */
const HOLE_BLOCK = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK);

/**
 * The parts of a chunk to write at `offset` of a new file, sparse: `[start, end)` ranges of `data` that leave out
 * the zero parts lying in blocks of HOLE_BLOCK (aligned in the file). The file was created empty and gets its size
 * at the end, so skipped bytes read as zeros, and a block becomes a hole when no chunk wrote a nonzero byte into
 * it. A file that was sparse at backup comes back sparse; zeros that were allocated come back as holes too (same
 * content, less space).
 */
function* nonZeroRuns(data: Buffer, offset: number): Generator<[number, number]> {
  const blockEnd = (at: number) => Math.min(data.length, at + HOLE_BLOCK - ((offset + at) % HOLE_BLOCK));
  const zero = (at: number) => {
    const end = blockEnd(at);
    return data.subarray(at, end).equals(ZEROS.subarray(0, end - at));
  };
  for (let start = 0; start < data.length; ) {
    while (start < data.length && zero(start)) start = blockEnd(start);
    let end = start;
    while (end < data.length && !zero(end)) end = blockEnd(end);
    if (end > start) yield [start, end];
    start = end;
  }
}

/** Chunks up to this size are written with a system call on the spot (see OutputFile), larger ones on the pool. */
const SYNC_WRITE_MAX = 64 * 1024;
const writeAsync = promisify(writeAt);

function writeAllNow(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await writeAsync(fd, data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Writes chunks in order to `sink`, the next ones read ahead (ChunkReader.inOrder). */
async function writeInOrder(reader: ChunkReader, meter: ProgressMeter, content: ChunkId[], sink: ContentSink) {
  try {
    for await (const data of reader.inOrder(content)) {
      meter.add(data.length);
      await sink.write(data);
    }
    await sink.end();
  } catch (error) {
    // Never leave output that looks complete: the sink is abandoned, the error surfaces.
    sink.abort();
    throw withContext('restoring', error);
  }
}

/** Where restored content goes, in order. */
interface ContentSink {
  /** The next bytes of the content. */
  write(data: Buffer): Promise<void>;
  /** All content written. */
  end(): Promise<void>;
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
