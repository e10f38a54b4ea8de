import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TidemarkError } from '../errors.ts';
import type { ChunkStore } from './chunk-store.ts';
import { chunkStream } from './chunker/fastcdc.ts';
import { type ChainId, type ChunkId, randomId, type SnapshotId } from './format.ts';
import { globMatcher } from './glob.ts';
import { InOrder } from './in-order.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot, SnapshotSummary } from './snapshot.ts';
import { decodeName, decodeTree, encodeName, encodeTarget, encodeTree, type Tree, type TreeEntry } from './tree.ts';

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
}

/** A named byte stream to back up (a database dump, stdin). */
export interface StreamSource {
  name: string;
  data: AsyncIterable<Buffer>;
}

/** Backs up a directory tree. Unchanged files of the parent snapshot (same size, mtime, inode) are not read again. */
export function backupTree(repository: Repository, path: string, options: BackupOptions): Promise<Snapshot> {
  return runBackup(repository, options, async (run) => {
    const root = await lstat(path).catch((error: unknown) => {
      throw new TidemarkError('SourceUnavailable', `cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    });
    if (!root.isDirectory()) throw new TidemarkError('InvalidArgument', `${path} is not a directory`);
    return run.directory(Buffer.from(path), '', run.parent?.root);
  });
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
  const started = Date.now();
  const incremental = options.type === 'incremental' && options.parent !== undefined;
  const chain = (incremental ? options.parent?.chainId : randomId().slice(0, 32)) as ChainId;
  // The lock reads the index again: the one loaded before may list chunks a prune deleted since.
  const lock = await repository.lock(false);
  try {
    // Unchanged files reuse the parent's chunks only while it exists: a prune before the lock may have
    // removed a forgotten parent's data (and none runs while the lock is held).
    const parent =
      incremental && options.parent && (await repository.hasSnapshot(options.parent.id)) ? options.parent : undefined;
    const meter = new ProgressMeter('backup', options.onProgress);
    const store = repository.chunkStore({ onUpload: (bytes) => meter.uploaded(bytes) });
    const run = new BackupRun(
      repository,
      parent,
      store,
      chain,
      meter,
      options.parallelChunks ?? 4,
      globMatcher(options.excludes ?? []),
    );
    const root = await walk(run);
    const index = await store.flush();
    if (index.packs.length > 0) await repository.saveIndex(index);
    const progress = meter.done();
    const skipped = [...run.skipped, ...(options.skipped?.() ?? [])];
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
    };
    await repository.saveSnapshot(snapshot);
    return snapshot;
  } finally {
    await lock.release();
  }
}

class BackupRun {
  readonly summary: Omit<SnapshotSummary, 'logicalBytes' | 'uploadedBytes' | 'durationMs'> = {
    files: 0,
    dirs: 0,
    chunks: 0,
    newChunks: 0,
    newBytes: 0,
  };
  readonly skipped: { path: string; reason: string }[] = [];
  private readonly hardLinks = new Map<string, number>();
  private readonly filesPerTop = new Map<string, number>();

  constructor(
    private readonly repository: Repository,
    /** The parent snapshot, whose unchanged files are not read again. */
    readonly parent: Snapshot | undefined,
    private readonly store: ChunkStore,
    readonly chain: ChainId,
    private readonly meter: ProgressMeter,
    private readonly parallelChunks: number,
    private readonly excluded: (relativePath: string) => boolean,
  ) {}

  /** Files per top-level directory (`.` for files at the root): the record counts of a volume backup. */
  filesPerTopDirectory(): Snapshot['objects'] {
    return [...this.filesPerTop]
      .map(([name, records]) => ({ name, records }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async storeTree(tree: Tree): Promise<ChunkId> {
    return (await this.putChunk('tree', encodeTree(tree))).id;
  }

  private async putChunk(type: 'data' | 'tree', data: Buffer) {
    const result = await this.store.put(this.chain, type, data);
    this.summary.chunks++;
    if (result.stored) {
      this.summary.newChunks++;
      this.summary.newBytes += data.length;
    }
    return result;
  }

  /** Chunks a stream and stores its chunks, several compressing at once, ids kept in order. */
  async content(data: AsyncIterable<Buffer>): Promise<{ content: ChunkId[]; size: number }> {
    const content: ChunkId[] = [];
    const inFlight = new InOrder<ChunkId>();
    let size = 0;
    const { chunker } = this.repository.config;
    try {
      for await (const chunk of chunkStream(data, { seed: this.repository.keys.chunkerSeed, ...chunker })) {
        size += chunk.length;
        this.meter.add(chunk.length);
        inFlight.add(this.putChunk('data', chunk).then((r) => r.id));
        if (inFlight.size >= this.parallelChunks) content.push((await inFlight.next()) as ChunkId);
      }
      while (inFlight.size > 0) content.push((await inFlight.next()) as ChunkId);
    } catch (error) {
      await inFlight.drain();
      throw error;
    }
    return { content, size };
  }

  /** Backs up one directory (path as bytes, so any name works); returns its tree id. */
  async directory(path: Buffer, display: string, parentTreeId: ChunkId | undefined): Promise<ChunkId> {
    this.summary.dirs++;
    const parent = parentTreeId ? await this.parentEntries(parentTreeId) : new Map<string, TreeEntry>();
    const names = (await readdir(path, { encoding: 'buffer' })).sort(Buffer.compare);
    const entries: TreeEntry[] = [];
    for (const name of names) {
      const childPath = Buffer.concat([path, Buffer.from('/'), name]);
      const childDisplay = `${display}/${name.toString('utf8')}`;
      if (this.excluded(childDisplay.slice(1))) continue;
      try {
        const entry = await this.entry(childPath, childDisplay, name, parent.get(name.toString('hex')));
        if (entry) entries.push(entry);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT')
          this.skipped.push({ path: childDisplay, reason: 'vanished while being read' });
        else if ((error as NodeJS.ErrnoException).code === 'EACCES')
          this.skipped.push({ path: childDisplay, reason: 'permission denied' });
        else throw error;
      }
    }
    return this.storeTree({ entries });
  }

  private async parentEntries(treeId: ChunkId): Promise<Map<string, TreeEntry>> {
    const tree = decodeTree(await this.store.get(treeId));
    return new Map(tree.entries.map((e) => [decodeName(e).toString('hex'), e]));
  }

  private async entry(
    path: Buffer,
    display: string,
    name: Buffer,
    previous: TreeEntry | undefined,
  ): Promise<TreeEntry | undefined> {
    const stat = await lstat(path, { bigint: true });
    const common = {
      ...encodeName(name),
      mode: Number(stat.mode & 0o7777n),
      mtimeNs: stat.mtimeNs.toString(),
      uid: Number(stat.uid),
      gid: Number(stat.gid),
    };
    if (stat.isDirectory()) {
      const subtree = await this.directory(path, display, previous?.type === 'dir' ? previous.subtree : undefined);
      return { ...common, type: 'dir', subtree };
    }
    if (stat.isSymbolicLink()) {
      return { ...common, type: 'symlink', ...encodeTarget(await readlink(path, { encoding: 'buffer' })) };
    }
    if (!stat.isFile()) {
      this.skipped.push({ path: display, reason: 'not a regular file, directory or symlink' });
      return undefined;
    }
    this.summary.files++;
    const top = display.indexOf('/', 1) === -1 ? '.' : display.slice(1, display.indexOf('/', 1));
    this.filesPerTop.set(top, (this.filesPerTop.get(top) ?? 0) + 1);
    const inode = Number(stat.ino);
    const entry: TreeEntry = { ...common, type: 'file', size: Number(stat.size), inode };
    if (stat.nlink > 1n) {
      const key = `${stat.dev}:${stat.ino}`;
      const existing = this.hardLinks.get(key);
      if (existing !== undefined) return { ...entry, link: existing };
      entry.link = this.hardLinks.size + 1;
      this.hardLinks.set(key, entry.link);
    }
    if (
      previous?.type === 'file' &&
      previous.content &&
      previous.size === entry.size &&
      previous.mtimeNs === entry.mtimeNs &&
      previous.inode === inode
    ) {
      this.meter.add(entry.size ?? 0, 1);
      this.summary.chunks += previous.content.length;
      return { ...entry, content: previous.content };
    }
    const { content, size } = await this.content(createReadStream(path));
    this.meter.add(0, 1);
    const after = await lstat(path, { bigint: true });
    if (after.mtimeNs !== stat.mtimeNs || BigInt(size) !== stat.size)
      this.skipped.push({ path: display, reason: 'changed while being read: stored as read, may be inconsistent' });
    return { ...entry, size, content };
  }
}

function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return entries.sort((a, b) => Buffer.compare(decodeName(a), decodeName(b)));
}
