import { type BigIntStats, lstatSync } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TidemarkError } from '../errors.ts';
import { Bounded, settledInOrder } from './bounded.ts';
import type { ChunkData, ChunkStore } from './chunk-store.ts';
import { chunkPartsStream } from './chunker/fastcdc.ts';
import { type FileMetadataIo, keptXattr, openFileMetadataIo } from './file-metadata.ts';
import { type ChainId, type ChunkId, randomId, type SnapshotId } from './format.ts';
import { globMatcher } from './glob.ts';
import { InOrder } from './in-order.ts';
import { whileHolding } from './lock.ts';
import { ParentTrees } from './parent-trees.ts';
import { cpuQuota } from './pipeline/cpu-quota.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot, SnapshotSummary } from './snapshot.ts';
import { SourceDirectory } from './source-directory.ts';
import { changedWhileRead, type FileBytes, SourceFileReader } from './source-file.ts';
import { SyncWhileFast } from './sync-while-fast.ts';
import { decodeName, decodeTree, encodeName, encodeTarget, encodeTree, type Tree, type TreeEntry } from './tree.ts';
import { type ScanResult, sameFileEntry, sameXattrs, unchangedContent } from './unchanged.ts';
import { UnchangedScanner } from './unchanged-scanner.ts';
import { Unsettled } from './unsettled.ts';

export interface BackupOptions {
  /** `full` starts a new chain; `incremental` continues the chain of `parent` (full when there is none). */
  type: 'full' | 'incremental';
  parent?: Snapshot;
  /** Describes the source in the snapshot, without credentials. */
  source: string;
  tags?: string[];
  /** Record counts per object; a function is called once the data is read (counts taken while streaming). */
  objects?: Snapshot['objects'] | (() => Snapshot['objects']);
  /** More things that could not be backed up, known once the data is read. */
  skipped?: () => NonNullable<Snapshot['skipped']>;
  /** Glob patterns of paths to leave out of a tree backup (see glob.ts). */
  excludes?: string[];
  onProgress?: ProgressListener;
  /** Chunks being compressed at once per file (compression runs on libuv's thread pool). */
  parallelChunks?: number;
  /**
   * Entries of a tree backup worked on at once (stat, extended attributes, read and chunk), besides the walk
   * itself; 1 is one at a time. Trees come out the same whatever the number. Default FILES_IN_FLIGHT.
   */
  parallelFiles?: number;
  /**
   * Worker threads that check directories of an incremental against the parent snapshot ahead of the walk
   * (unchanged-scanner.ts); 0: none, the walk looks at every name itself. Default: the CPU quota.
   */
  scanWorkers?: number;
  /**
   * Scans for an incremental made before it (UnchangedScanner.prescanning, listing the tree while the repository
   * opens); closed when the backup ends. Else one is made when there is a parent (see `scanWorkers`).
   */
  scanner?: UnchangedScanner;
}

/** Entries in flight (see `parallelFiles`). */
const FILES_IN_FLIGHT = 32;
/**
 * Bytes of file data in flight across the files being read: a small file counts its size, a large one what its
 * stream holds at most (chunker max times parallelChunks + 2). A file over the whole budget is read alone.
 */
const BYTES_IN_FLIGHT = 64 * 1024 * 1024;
/** Names of one directory lstat-ed at once, and in one batch (a directory's stats are held a batch at a time). */
const STATS_IN_FLIGHT = 64;
const STAT_BATCH = 512;
/** Subdirectories ahead of the walk opened meanwhile, their parent trees loaded and scanned (see `prepare`). */
const DIRECTORIES_AHEAD = 8;

/** `lossy` lines; the second tells the next incremental whether the parent's extended attributes are complete. */
const NO_METADATA_HELPER =
  'extended attributes not kept and times restored to the microsecond: no file metadata helper (perl)';
const DROPPED_XATTRS = 'extended attributes outside user.* and POSIX ACLs not kept';

/** A named byte stream to back up (a database dump, stdin). */
export interface StreamSource {
  name: string;
  data: AsyncIterable<Buffer>;
}

/**
 * Backs up a directory tree. Unchanged files of the parent snapshot (same size, mtime, ctime, inode) are not read
 * again. What the snapshot could not keep exactly is listed in its `lossy`.
 */
export function backupTree(repository: Repository, path: string, options: BackupOptions): Promise<Snapshot> {
  return runBackup(repository, options, async (run) => {
    const root = await lstat(path, { bigint: true }).catch((error: unknown) => {
      throw new TidemarkError('SourceUnavailable', `cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    });
    if (!root.isDirectory()) throw new TidemarkError('InvalidArgument', `${path} is not a directory`);
    run.metadata = await openFileMetadataIo();
    try {
      return await run.tree(Buffer.from(path), root);
    } finally {
      run.metadata.close();
    }
  }).finally(() => options.scanner?.close());
}

/** Backs up streams, each stored as a file entry of the root tree. */
export function backupStreams(
  repository: Repository,
  streams: StreamSource[],
  options: BackupOptions,
): Promise<Snapshot> {
  return runBackup(repository, options, async (run) => {
    const entries: TreeEntry[] = [];
    const now = `${BigInt(Date.now()) * 1_000_000n}`;
    for (const stream of streams) {
      const { content, size } = await run.content(stream.data);
      run.summary.files++;
      entries.push({
        ...encodeName(Buffer.from(stream.name)),
        type: 'file',
        mode: 0o600,
        mtimeNs: now,
        uid: 0,
        gid: 0,
        size,
        content,
      });
    }
    return run.storeTree({ entries: sortEntries(entries) });
  });
}

async function runBackup(
  repository: Repository,
  options: BackupOptions,
  walk: (run: BackupRun) => Promise<ChunkId>,
): Promise<Snapshot> {
  // A snapshot's time is when its data was first looked at: a prescan may have listed the tree before.
  const started = Math.min(Date.now(), options.scanner?.since ?? Number.POSITIVE_INFINITY);
  const incremental = options.type === 'incremental' && options.parent !== undefined;
  const chain = (incremental ? options.parent?.chainId : randomId().slice(0, 32)) as ChainId;
  // The lock reads the index again: the one loaded before may list chunks a prune deleted since.
  const lock = await repository.lock(false);
  return whileHolding(lock, async () => {
    // Unchanged files reuse the parent's chunks only while it exists: a prune before the lock may have
    // removed a forgotten parent's data (and none runs while the lock is held).
    const parent =
      incremental && options.parent && (await repository.hasSnapshot(options.parent.id)) ? options.parent : undefined;
    const meter = new ProgressMeter('backup', options.onProgress);
    const store = repository.chunkStore({ onUpload: (bytes) => meter.uploaded(bytes) });
    const excludes = options.excludes ?? [];
    const scanWorkers = options.scanWorkers ?? cpuQuota();
    const scanner =
      parent && scanWorkers > 0 ? (options.scanner ?? new UnchangedScanner(scanWorkers, excludes)) : undefined;
    if (options.scanner !== scanner) await options.scanner?.close(); // unused: its prescan would only cost CPU
    const run = new BackupRun(repository, parent, store, chain, meter, globMatcher(excludes), scanner, {
      parallelChunks: options.parallelChunks ?? 4,
      parallelFiles: options.parallelFiles ?? FILES_IN_FLIGHT,
    });
    const root = await walk(run).finally(() => scanner?.close());
    const index = await store.flush();
    if (index.packs.length > 0) await repository.saveIndex(index);
    const progress = meter.done();
    const skipped = [...run.skippedInWalkOrder(), ...(options.skipped?.() ?? [])];
    const snapshot: Snapshot = {
      version: 1,
      id: randomId() as SnapshotId,
      time: new Date(started).toISOString(),
      hostname: hostname(),
      source: options.source,
      type: incremental ? 'incremental' : 'full',
      chainId: chain,
      ...(incremental && options.parent ? { parent: options.parent.id } : {}),
      tags: options.tags ?? [],
      root,
      summary: {
        ...run.summary,
        logicalBytes: progress.bytesDone,
        uploadedBytes: progress.uploadedBytes,
        durationMs: Date.now() - started,
      },
      objects:
        (typeof options.objects === 'function' ? options.objects() : options.objects) ?? run.filesPerTopDirectory(),
      ...(skipped.length ? { skipped } : {}),
      ...(run.lossy().length ? { lossy: run.lossy() } : {}),
    };
    await repository.saveSnapshot(snapshot);
    return snapshot;
  });
}

/**
 * A directory child to back up: its path from the root of the source as bytes (any name works), as shown, its
 * name, and the open directory it is in (see `reachedPath`).
 */
interface Child {
  /** Only for lstat: what is read or listed is reached through `reachedPath`, and checked to be what lstat saw. */
  realPath: Buffer;
  display: string;
  name: Buffer;
  /** The open directory it is in (none: the root). */
  directory?: SourceDirectory;
}

/** The extended attributes an entry keeps. */
type KeptXattrs = NonNullable<TreeEntry['xattrs']>;

/** A directory's tree in the parent snapshot: its id, its bytes, its entries in order and by name (latin1). */
interface ParentTree {
  id: ChunkId;
  encoded: Buffer;
  list: TreeEntry[];
  entries: Map<string, TreeEntry>;
}

/** A directory's tree in the parent snapshot, loading. */
interface ParentTreeLoading {
  id: ChunkId;
  encoded: Promise<Buffer>;
}

/**
 * A directory about to be walked: open, its parent tree loading, and, in an incremental with scan workers, being
 * scanned for being unchanged (undefined: not known, the walk looks at every name).
 */
interface Prepared {
  opened: SourceDirectory;
  parent?: ParentTreeLoading;
  scan?: Promise<ScanResult | undefined>;
}

/** A directory walked: every decision below it made in walk order; `tree` resolves once all its content is stored. */
interface Walked {
  tree: Promise<ChunkId>;
}

/** How a hard-link group's first name (the one carrying the content) ended; later names wait for it. */
type LinkOutcome = { link: number } | { unreadable: { path: string; reason: string } };

/**
 * One tree backup. The walk is depth-first in name order and makes every order-dependent decision in that order
 * (which name of a hard-link group carries the content, link numbers, the order of `skipped`); the work per entry
 * (extended attributes, reading, chunking, storing) runs concurrently, bounded by `parallelFiles` entries and
 * BYTES_IN_FLIGHT bytes, and each directory's tree is stored once all its entries are done. So the trees are the
 * same whatever the concurrency.
 */
class BackupRun {
  readonly summary: Omit<SnapshotSummary, 'logicalBytes' | 'uploadedBytes' | 'durationMs'> = {
    files: 0,
    dirs: 0,
    chunks: 0,
    newChunks: 0,
    newBytes: 0,
  };
  /** Reads extended attributes; set by a tree backup. */
  metadata: FileMetadataIo | undefined;
  /** Skipped paths with their position in walk order (work ends in any order). */
  private readonly skipped: { order: number; path: string; reason: string }[] = [];
  /** Entries walked so far: the walk-order position of the next. */
  private walked = 0;
  private readonly droppedXattrs = new Set<string>();
  /** Hard-link groups (dev:ino) seen, by the outcome of their first name. */
  private readonly hardLinks = new Map<string, Promise<LinkOutcome>>();
  /** The link number given last, once every group before has its outcome (numbers go to readable groups only). */
  private lastLink: Promise<number> = Promise.resolve(0);
  private readonly filesPerTop = new Map<string, number>();
  private readonly inFlight: Bounded;
  /** Work started and not yet settled, waited for before a failed backup returns. */
  private readonly started = new Unsettled();
  /** Stats and reads of small files are synchronous while they are fast (see SyncWhileFast). */
  private readonly sync = new SyncWhileFast();
  /** Reads the files whose content is not the parent's. */
  private readonly files: SourceFileReader;
  /** The first failure the backup cannot skip: ends the walk early. */
  private failure: { error: unknown } | undefined;
  /** Directories open (see `directory`). */
  private readonly openDirectories = new Set<SourceDirectory>();
  /** The file metadata helper reads extended attributes by path (see `readXattrs`). */
  private xattrsByPath = false;
  /** The parent snapshot's trees, the next subdirectories' read together. */
  private readonly parentTrees: ParentTrees;

  constructor(
    private readonly repository: Repository,
    /** The parent snapshot, whose unchanged files are not read again. */
    readonly parent: Snapshot | undefined,
    private readonly store: ChunkStore,
    readonly chain: ChainId,
    private readonly meter: ProgressMeter,
    private readonly excluded: (relativePath: string) => boolean,
    /** Checks directories against the parent ahead of the walk (incremental only). */
    private readonly scanner: UnchangedScanner | undefined,
    private readonly limits: { parallelChunks: number; parallelFiles: number },
  ) {
    this.inFlight = new Bounded(limits.parallelFiles, BYTES_IN_FLIGHT);
    this.files = new SourceFileReader(repository.config.chunker.min);
    this.parentTrees = new ParentTrees(store.reader);
  }

  /** What this snapshot does not keep exactly (see docs/repository-format.md, "File metadata"). */
  lossy(): string[] {
    if (!this.metadata) return [];
    const lossy: string[] = [];
    if (!this.metadata.exact) lossy.push(NO_METADATA_HELPER);
    if (this.droppedXattrs.size) lossy.push(`${DROPPED_XATTRS}: ${[...this.droppedXattrs].sort().join(', ')}`);
    return lossy;
  }

  skippedInWalkOrder(): { path: string; reason: string }[] {
    return this.skipped.sort((a, b) => a.order - b.order).map(({ path, reason }) => ({ path, reason }));
  }

  /** Files per top-level directory (`.` for files at the root): the record counts of a volume backup. */
  filesPerTopDirectory(): Snapshot['objects'] {
    return [...this.filesPerTop]
      .map(([name, records]) => ({ name, records }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Stores a tree; one byte-identical to the parent's tree of the directory is that tree (same chain, same bytes,
   * same id), which exists while the lock is held: its id is reused without hashing or storing it again.
   */
  async storeTree(tree: Tree, parent?: ParentTree): Promise<ChunkId> {
    const encoded = encodeTree(tree);
    if (parent?.encoded.equals(encoded)) {
      this.summary.chunks++;
      return parent.id;
    }
    return (await this.putChunk('tree', encoded, encoded.length)).id;
  }

  private async putChunk(type: 'data' | 'tree', data: ChunkData, length: number) {
    const result = await this.store.put(this.chain, type, data);
    this.summary.chunks++;
    if (result.stored) {
      this.summary.newChunks++;
      this.summary.newBytes += length;
    }
    return result;
  }

  /**
   * Chunks a stream and stores its chunks, several compressing at once, ids kept in order. A chunk goes to the
   * store as the pieces of input it spans (the store copies them), not joined into a new buffer.
   */
  async content(data: AsyncIterable<Buffer> | FileBytes): Promise<{ content: ChunkId[]; size: number }> {
    const content: ChunkId[] = [];
    /** Each chunk's id and where it ends in the stream. */
    const inFlight = new InOrder<{ id: ChunkId; end: number }>();
    let size = 0;
    const { chunker } = this.repository.config;
    // Chunks are taken in order: once one is stored, so is every byte before its end (the reads can be reused).
    const next = async () => {
      const { id, end } = (await inFlight.next()) as { id: ChunkId; end: number };
      content.push(id);
      if ('stored' in data) data.stored(end);
    };
    try {
      for await (const parts of chunkPartsStream(data, { seed: this.repository.keys.chunkerSeed, ...chunker })) {
        let length = 0;
        for (const part of parts) length += part.length;
        size += length;
        this.meter.add(length);
        const end = size;
        inFlight.add(this.putChunk('data', parts, length).then(({ id }) => ({ id, end })));
        if (inFlight.size >= this.limits.parallelChunks) await next();
      }
      while (inFlight.size > 0) await next();
    } catch (error) {
      await inFlight.drain();
      throw error;
    }
    return { content, size };
  }

  /** Backs up the tree at `path` (bytes, so any name works; `stat` its lstat); returns its tree id. */
  async tree(path: Buffer, stat: BigIntStats): Promise<ChunkId> {
    // Without every attribute of the parent, no file is reused as it is, so no directory could be found unchanged.
    if (!this.parentXattrsComplete) await this.scanner?.close();
    try {
      const root = { realPath: path, display: '', name: Buffer.alloc(0) };
      const { tree } = await this.directory(root, this.prepare(root, stat, this.parent?.root));
      return await tree;
    } catch (error) {
      await this.started.settled();
      throw error;
    } finally {
      // Those whose tree failed: nothing runs below them any more.
      for (const directory of this.openDirectories) directory.close();
    }
  }

  /** Starts `work` (counted in `started` until it settles). */
  private track<T>(work: Promise<T>): Promise<T> {
    return this.started.track(work);
  }

  /** Runs `task` once the bounds admit it; resolves (to the boxed result) when it has started. */
  private async bounded<T>(bytes: number, task: () => Promise<T>): Promise<{ result: Promise<T> }> {
    const { result } = await this.inFlight.start(bytes, task);
    return { result: this.track(result) };
  }

  private skip(order: number, path: string, reason: string): void {
    this.skipped.push({ order, path, reason });
  }

  /**
   * Opens a directory (`listed`: its lstat from its parent's listing) and starts loading its tree in the parent
   * snapshot (`parentTreeId`) and scanning it against that tree; ahead of the walk for the next subdirectories.
   */
  private prepare(dir: Child, listed: BigIntStats, parentTreeId: ChunkId | undefined): Promise<Prepared> {
    const parent =
      parentTreeId === undefined ? undefined : { id: parentTreeId, encoded: this.parentTrees.get(parentTreeId) };
    parent?.encoded.catch(() => {}); // surfaces when the walk decodes it (a directory skipped never is)
    const prepared = SourceDirectory.open(reachedPath(dir), listed, this.sync.useSync()).then((opened) => {
      this.openDirectories.add(opened);
      // A scan reuses files as they are: without every attribute of the parent the walk reads each file's again
      // (and tells what it drops), so nothing is scanned.
      const scanner = this.parentXattrsComplete ? this.scanner : undefined;
      const scan =
        scanner && parent
          ? parent.encoded
              .then((parentTree) =>
                scanner.scan({
                  base: opened.base,
                  realPath: dir.realPath,
                  display: dir.display,
                  parentTree,
                }),
              )
              .catch(() => undefined)
          : undefined;
      return { opened, ...(parent ? { parent } : {}), ...(scan ? { scan } : {}) };
    });
    prepared.catch(() => {}); // surfaces when the walk reaches the directory
    return this.track(prepared);
  }

  /**
   * Walks one prepared directory: its children in name order, subdirectories depth-first; one found unchanged,
   * only its subdirectories. It stays open until its tree is stored: its names are reached through it.
   */
  private async directory(dir: Child, preparing: Promise<Prepared>): Promise<Walked> {
    this.summary.dirs++;
    const { opened, parent, scan } = await preparing;
    const scanned = await scan;
    let walked: Walked;
    if (parent && scanned?.unchanged) walked = await this.walkUnchanged(dir, opened, parent, scanned);
    else {
      let names: Buffer[];
      try {
        names = (await readdir(opened.base, { encoding: 'buffer' })).sort(Buffer.compare);
      } catch (error) {
        // Nothing started below it (an unreadable directory is skipped, the walk goes on).
        this.openDirectories.delete(opened);
        opened.close();
        throw error;
      }
      const loaded = parent && (await this.decodedParent(parent));
      const { done } = await this.walkOpen(dir, opened, names, loaded);
      const tree = done.then((entries) => this.storeTree({ entries: entries.filter(isEntry) }, loaded));
      walked = { tree: this.track(tree) };
    }
    // Closed once every entry is done (its number could otherwise be reused under work still reaching names
    // through it); a failed tree leaves it to the end of the backup, when nothing runs any more.
    void walked.tree.then(
      () => {
        this.openDirectories.delete(opened);
        opened.close(this.sync.useSync());
      },
      () => {},
    );
    return walked;
  }

  /**
   * A directory the scan found unchanged: its files are the parent's entries as they are, counted at once; its
   * tree is the parent's, unless one of its subdirectories (walked as usual) comes out otherwise.
   */
  private async walkUnchanged(
    dir: Child,
    opened: SourceDirectory,
    parent: ParentTreeLoading,
    scanned: Extract<ScanResult, { unchanged: true }>,
  ): Promise<Walked> {
    this.walked += scanned.files; // files reused as they are are never skipped: their walk positions are unused
    this.countFiles(`${dir.display}/`, scanned.files);
    this.meter.add(scanned.bytes, scanned.files);
    this.summary.chunks += scanned.chunks;
    if (scanned.subdirs.length === 0) {
      this.summary.chunks++;
      return { tree: Promise.resolve(parent.id) };
    }
    const loaded = await this.decodedParent(parent);
    const names = scanned.subdirs.map((i) => decodeName(loaded.list[i] as TreeEntry));
    const { done } = await this.walkOpen(dir, opened, names, loaded);
    const tree = done.then((walked) => {
      // By name: a subdirectory gone by the time the walk reached it has no entry, one now a file has a file's.
      const byName = new Map(walked.filter(isEntry).map((e) => [decodeName(e).toString('latin1'), e]));
      const subdirs = new Set(scanned.subdirs);
      const entries = loaded.list.map((e, i) => (subdirs.has(i) ? byName.get(decodeName(e).toString('latin1')) : e));
      return this.storeTree({ entries: entries.filter(isEntry) }, loaded);
    });
    return { tree: this.track(tree) };
  }

  /** Walks `names` of an open directory in order; resolves once each is started, to their entries (boxed). */
  private async walkOpen(
    dir: Child,
    opened: SourceDirectory,
    names: Buffer[],
    parentLoaded: ParentTree | undefined,
  ): Promise<{ done: Promise<(TreeEntry | undefined)[]> }> {
    const parent = parentLoaded?.entries ?? new Map<string, TreeEntry>();
    const children: Child[] = [];
    for (const name of names) {
      const display = `${dir.display}/${name.toString('utf8')}`;
      if (!this.excluded(display.slice(1))) {
        const realPath = Buffer.concat([dir.realPath, SLASH, name]);
        children.push({ realPath, display, name, directory: opened });
      }
    }
    // lstat in batches, the next batch while this one is walked: a huge directory holds one batch of stats (and
    // of extended attributes, asked as soon as the batch's stats are in).
    const statBatch = async (from: number) => {
      const batch = children.slice(from, from + STAT_BATCH);
      const stats = this.sync.useSync()
        ? this.sync.time(batch.length, () => batch.map(lstatSettled))
        : await settledInOrder(batch, STATS_IN_FLIGHT, (child) => lstat(child.realPath, { bigint: true }));
      const previous = batch.map((child) => parent.get(child.name.toString('latin1')));
      return { stats, previous, xattrs: this.batchXattrs(dir.realPath, opened, batch, stats, previous) };
    };
    let nextStats = statBatch(0);
    const entries: (TreeEntry | Promise<TreeEntry | undefined>)[] = [];
    for (let from = 0; from < children.length; from += STAT_BATCH) {
      const batch = children.slice(from, from + STAT_BATCH);
      const { stats, previous, xattrs } = await nextStats;
      nextStats = statBatch(from + STAT_BATCH);
      // The next subdirectories are prepared while the walk is busy before them.
      const subdirs = batch.flatMap((_, i) => {
        const before = previous[i];
        const stat = stats[i];
        return before?.type === 'dir' && before.subtree && stat?.status === 'fulfilled' && stat.value.isDirectory()
          ? [{ i, subtree: before.subtree, stat: stat.value }]
          : [];
      });
      const subtrees = subdirs.map(({ subtree }) => subtree);
      const prepared = new Map<number, Promise<Prepared>>();
      let nextSubdir = 0;
      for (const [i, child] of batch.entries()) {
        if (this.failure) throw this.failure.error;
        const order = this.walked++;
        const stat = stats[i] as PromiseSettledResult<BigIntStats>;
        while ((subdirs[nextSubdir]?.i ?? Number.POSITIVE_INFINITY) < i) nextSubdir++;
        for (let k = nextSubdir; k < Math.min(subdirs.length, nextSubdir + DIRECTORIES_AHEAD); k++) {
          const { i: at, subtree, stat: listed } = subdirs[k] as (typeof subdirs)[number];
          if (prepared.has(at)) continue;
          this.parentTrees.readAhead(subtrees, k);
          prepared.set(at, this.prepare(batch[at] as Child, listed, subtree));
        }
        const preparedSubdir = prepared.get(i);
        prepared.delete(i);
        const reused = stat.status === 'fulfilled' ? this.reusedFile(child, stat.value, previous[i]) : undefined;
        if (reused) {
          entries.push(reused);
          continue;
        }
        let done: Promise<TreeEntry | undefined>;
        try {
          if (stat.status === 'rejected') throw stat.reason;
          done = (await this.entry(child, order, stat.value, previous[i], () => xattrs(i), preparedSubdir)).done;
        } catch (error) {
          const reason = skipReason(error);
          if (reason === undefined) throw error;
          this.skip(order, child.display, reason);
          continue;
        }
        const kept = done.catch((error: unknown) => {
          const reason = skipReason(error);
          if (reason === undefined) {
            this.failure ??= { error };
            throw error;
          }
          this.skip(order, child.display, reason);
          return undefined;
        });
        kept.catch(() => {}); // surfaces through the tree; until then it must not count as unhandled
        entries.push(kept);
      }
    }
    return { done: Promise.all(entries) };
  }

  private async decodedParent({ id, encoded }: ParentTreeLoading): Promise<ParentTree> {
    const bytes = await encoded;
    const list = decodeTree(bytes).entries;
    // latin1: one character per byte, so any name is its own key.
    return { id, encoded: bytes, list, entries: new Map(list.map((e) => [decodeName(e).toString('latin1'), e])) };
  }

  /**
   * Decides, in walk order, what to do with one entry and starts it; resolves once started (a subdirectory: once
   * walked) to the entry's promise, boxed (undefined: left out).
   */
  private async entry(
    child: Child,
    order: number,
    stat: BigIntStats,
    previous: TreeEntry | undefined,
    xattrs: () => Promise<KeptXattrs>,
    preparedSubdir: Promise<Prepared> | undefined,
  ): Promise<{ done: Promise<TreeEntry | undefined> }> {
    const { display, name } = child;
    const path = reachedPath(child);
    const common = async () => commonFields(name, stat, await xattrs());
    if (stat.isDirectory()) {
      const { result: metadata } = await this.bounded(0, common);
      const preparing =
        preparedSubdir ?? this.prepare(child, stat, previous?.type === 'dir' ? previous.subtree : undefined);
      const walked = await this.directory(child, preparing).catch(async (error: unknown) => {
        await metadata.catch(() => {});
        throw error;
      });
      return { done: Promise.all([metadata, walked.tree]).then(([m, subtree]) => ({ ...m, type: 'dir', subtree })) };
    }
    if (stat.isSymbolicLink()) {
      const { result } = await this.bounded(0, async () => {
        const [m, target] = await Promise.all([common(), readlink(path, { encoding: 'buffer' })]);
        return { ...m, type: 'symlink' as const, ...encodeTarget(target) };
      });
      return { done: result };
    }
    if (!stat.isFile()) {
      this.skip(order, display, 'not a regular file, directory or symlink');
      return { done: Promise.resolve(undefined) };
    }
    const size = Number(stat.size);
    const file = async (): Promise<TreeEntry> => fileEntry(await common(), stat);
    const linkKey = stat.nlink > 1n ? `${stat.dev}:${stat.ino}` : undefined;
    const first = linkKey ? this.hardLinks.get(linkKey) : undefined;
    if (first) {
      // A later name of a hard-link group: a link to the first name's content, or skipped with it.
      const { result } = await this.bounded(0, file);
      const done = Promise.all([result, first]).then(([entry, outcome]) => {
        if ('link' in outcome) return this.counted(display, { ...entry, link: outcome.link });
        const { path: firstPath, reason } = outcome.unreadable;
        this.skip(order, display, `hard link of ${firstPath}, which could not be read (${reason})`);
        return undefined;
      });
      return { done };
    }
    const unchanged = unchangedContent(stat, previous);
    const { result } = await this.bounded(unchanged ? 0 : this.bytesInFlight(size), async () => {
      const entry = await file();
      if (unchanged) {
        this.meter.add(size, 1);
        this.summary.chunks += unchanged.length;
        return { ...entry, content: unchanged };
      }
      return this.fileContent(path, display, order, entry, stat);
    });
    if (!linkKey) return { done: result.then((entry) => this.counted(display, entry)) };
    const outcome = result.then(
      (): true => true,
      (error: unknown) => ({ path: display, reason: skipReason(error) ?? 'read failed' }),
    );
    const link = Promise.all([this.lastLink, outcome]).then(([last, read]) => (read === true ? last + 1 : last));
    this.lastLink = link;
    this.hardLinks.set(
      linkKey,
      Promise.all([outcome, link]).then(([read, number]) => (read === true ? { link: number } : { unreadable: read })),
    );
    return {
      done: Promise.all([result, link]).then(([entry, number]) => this.counted(display, { ...entry, link: number })),
    };
  }

  /** Bytes a file holds while read: all of it when small, else what its stream and chunk puts hold at most. */
  private bytesInFlight(size: number): number {
    const { max } = this.repository.config.chunker;
    return Math.min(size, max * (this.limits.parallelChunks + 2));
  }

  /** Counts a file name backed up (in the summary and per top-level directory). */
  private counted(display: string, entry: TreeEntry): TreeEntry {
    this.countFiles(display, 1);
    return entry;
  }

  /** Counts `files` backed up at `display` (a file's, or a directory's followed by a slash). */
  private countFiles(display: string, files: number): void {
    if (files === 0) return;
    this.summary.files += files;
    const top = display.indexOf('/', 1) === -1 ? '.' : display.slice(1, display.indexOf('/', 1));
    this.filesPerTop.set(top, (this.filesPerTop.get(top) ?? 0) + files);
  }

  /** The entry with its content read and stored; noted as skipped-but-kept when the file changed meanwhile. */
  private async fileContent(
    path: Buffer,
    display: string,
    order: number,
    entry: TreeEntry,
    stat: BigIntStats,
  ): Promise<TreeEntry> {
    const { files } = this;
    const whole =
      Number(stat.size) < files.wholeBelow && this.sync.useSync()
        ? this.sync.time(4, () => files.readWhole(path, stat))
        : undefined;
    let read: { content: ChunkId[]; size: number };
    let after: BigIntStats;
    if (whole) {
      const { data } = whole;
      read = {
        content: data.length > 0 ? [(await this.putChunk('data', data, data.length)).id] : [],
        size: data.length,
      };
      this.meter.add(data.length, 1);
      after = whole.after;
    } else {
      ({ result: read, after } = await files.stream(path, stat, (data) => this.content(data)));
      this.meter.add(0, 1);
    }
    if (changedWhileRead(stat, after, read.size))
      this.skip(order, display, 'changed while being read: stored as read, may be inconsistent');
    return { ...entry, size: read.size, content: read.content };
  }

  /**
   * The extended attributes kept (namespaces: file-metadata.ts) of each entry of a batch, by its index; the names
   * of others are noted as lossy. The parent's are reused when the entry's ctime (and a file's inode) is
   * unchanged: setting or removing an attribute moves the ctime, so this is the same test that reuses an
   * unchanged file's content. Only when the parent read every attribute (it had the helper and dropped none, so
   * nothing is missing from `lossy` either). The others are asked of the helper at once, in one request.
   */
  private batchXattrs(
    realPath: Buffer,
    directory: SourceDirectory,
    batch: readonly Child[],
    stats: readonly PromiseSettledResult<BigIntStats>[],
    previous: readonly (TreeEntry | undefined)[],
  ): (i: number) => Promise<KeptXattrs> {
    const reused = stats.map((stat, i) =>
      stat.status === 'fulfilled' ? this.parentXattrs(stat.value, previous[i]) : undefined,
    );
    const asked = new Map<number, number>();
    for (const [i, stat] of stats.entries()) if (stat.status === 'fulfilled' && !reused[i]) asked.set(i, asked.size);
    const names = [...asked.keys()].map((i) => (batch[i] as Child).name);
    const read = names.length ? this.track(this.readXattrsIn(realPath, directory, names)) : Promise.resolve([]);
    read.catch(() => {}); // surfaces through the entries that take from it (a walk that fails may take none)
    return async (i) => {
      const kept = reused[i];
      if (kept) return kept;
      const all = (await read)[asked.get(i) ?? -1] ?? [];
      if (all instanceof Error) throw all;
      for (const xattr of all) if (!keptXattr(xattr.name)) this.droppedXattrs.add(xattr.name);
      return all.filter((x) => keptXattr(x.name)).map((x) => ({ name: x.name, valueB64: x.value.toString('base64') }));
    };
  }

  /**
   * All extended attributes of `names` in the directory, read by the helper process through the directory's
   * descriptor (source-directory.ts). A process that changed its user is not dumpable, and its helper may not use
   * its descriptors (every name EACCES): from then on, the helper reads by path.
   */
  private async readXattrsIn(realPath: Buffer, directory: SourceDirectory, names: Buffer[]) {
    const metadata = this.metadata;
    if (!metadata) return [];
    if (directory.throughDescriptor && !this.xattrsByPath) {
      const answers = await metadata.readXattrsIn(directory.base, names);
      if (!answers.every((answer) => answer instanceof Error && answer.code === 'EACCES')) return answers;
      this.xattrsByPath = true;
    }
    return metadata.readXattrsIn(realPath, names);
  }

  /** The parent's extended attributes of the entry when they can be reused (see `batchXattrs`), else undefined. */
  private parentXattrs(stat: BigIntStats, previous: TreeEntry | undefined): TreeEntry['xattrs'] {
    return this.parentXattrsComplete ? sameXattrs(stat, previous) : undefined;
  }

  /**
   * The entry of a file that is the parent's in content and attributes (and not hard-linked: link numbers are
   * given in walk order), made at once: a nothing-changed incremental starts no task for it.
   */
  private reusedFile(child: Child, stat: BigIntStats, previous: TreeEntry | undefined): TreeEntry | undefined {
    if (!stat.isFile() || stat.nlink > 1n) return undefined;
    const content = unchangedContent(stat, previous);
    const xattrs = content && this.parentXattrs(stat, previous);
    if (!content || !xattrs) return undefined;
    this.meter.add(Number(stat.size), 1);
    this.summary.chunks += content.length;
    const entry = previous && sameFileEntry(previous, stat) ? previous : undefined;
    return this.counted(
      child.display,
      entry ?? { ...fileEntry(commonFields(child.name, stat, xattrs), stat), content },
    );
  }

  private get parentXattrsComplete(): boolean {
    return (
      this.metadata?.exact === true &&
      this.parent !== undefined &&
      !(this.parent.lossy ?? []).some((line) => line === NO_METADATA_HELPER || line.startsWith(DROPPED_XATTRS))
    );
  }
}

/** The fields every entry has (`type` and the rest follow). */
function commonFields(name: Buffer, stat: BigIntStats, xattrs: KeptXattrs) {
  return {
    ...encodeName(name),
    mode: Number(stat.mode & 0o7777n),
    mtimeNs: stat.mtimeNs.toString(),
    ctimeNs: stat.ctimeNs.toString(),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    ...(xattrs.length ? { xattrs } : {}),
  };
}

/** A file's entry without its content. */
function fileEntry(common: ReturnType<typeof commonFields>, stat: BigIntStats): TreeEntry {
  return {
    ...common,
    type: 'file',
    // Atimes of files only: the backup's own readdir and readlink move those of directories and symlinks, and
    // storing them would make every tree new in every backup.
    atimeNs: stat.atimeNs.toString(),
    size: Number(stat.size),
    inode: Number(stat.ino),
  };
}

const SLASH = Buffer.from('/');

/**
 * The path a child is read or listed by: through its directory's descriptor (source-directory.ts); made only for
 * an entry that is read, not for each name the walk reuses.
 */
function reachedPath(child: Child): Buffer {
  return child.directory ? child.directory.child(child.name) : child.realPath;
}

function lstatSettled(child: Child): PromiseSettledResult<BigIntStats> {
  try {
    return { status: 'fulfilled', value: lstatSync(child.realPath, { bigint: true }) };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}

/** Why a path that could not be backed up is skipped rather than failing the backup; undefined: fail. */
function skipReason(error: unknown): string | undefined {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EREPLACED':
      return 'replaced while being read (by another file, a symlink or a special file): not stored';
    case 'ENOENT':
      return 'vanished while being read';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENAMETOOLONG':
      return 'path longer than the system allows (PATH_MAX, 4096 bytes)';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return undefined;
  }
}

function isEntry(entry: TreeEntry | undefined): entry is TreeEntry {
  return entry !== undefined;
}

function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return entries.sort((a, b) => Buffer.compare(decodeName(a), decodeName(b)));
}
