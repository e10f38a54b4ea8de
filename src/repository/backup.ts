import { type BigIntStats, createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TidemarkError } from '../errors.ts';
import type { ChunkStore } from './chunk-store.ts';
import { chunkStream } from './chunker/fastcdc.ts';
import { type FileMetadataIo, keptXattr, openFileMetadataIo } from './file-metadata.ts';
import { type ChainId, type ChunkId, randomId, type SnapshotId } from './format.ts';
import { globMatcher } from './glob.ts';
import { InOrder } from './in-order.ts';
import { whileHolding } from './lock.ts';
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

/**
 * Backs up a directory tree. Unchanged files of the parent snapshot (same size, mtime, ctime, inode) are not read
 * again. What the snapshot could not keep exactly is listed in its `lossy`.
 */
export function backupTree(repository: Repository, path: string, options: BackupOptions): Promise<Snapshot> {
  return runBackup(repository, options, async (run) => {
    const root = await lstat(path).catch((error: unknown) => {
      throw new TidemarkError('SourceUnavailable', `cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    });
    if (!root.isDirectory()) throw new TidemarkError('InvalidArgument', `${path} is not a directory`);
    run.metadata = await openFileMetadataIo();
    try {
      return await run.directory(Buffer.from(path), '', run.parent?.root);
    } finally {
      run.metadata.close();
    }
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
  return whileHolding(lock, async () => {
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
      ...(run.lossy().length ? { lossy: run.lossy() } : {}),
    };
    await repository.saveSnapshot(snapshot);
    return snapshot;
  });
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
  /** Reads extended attributes; set by a tree backup. */
  metadata: FileMetadataIo | undefined;
  private readonly droppedXattrs = new Set<string>();
  private readonly hardLinks = new Map<string, number>();
  /** Hard-link groups whose content could not be read: the first name tried and why. */
  private readonly unreadableLinks = new Map<string, { path: string; reason: string }>();
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

  /** What this snapshot does not keep exactly (see docs/repository-format.md, "File metadata"). */
  lossy(): string[] {
    if (!this.metadata) return [];
    const lossy: string[] = [];
    if (!this.metadata.exact)
      lossy.push('extended attributes not kept and times restored to the microsecond: no file metadata helper (perl)');
    if (this.droppedXattrs.size)
      lossy.push(
        `extended attributes outside user.* and POSIX ACLs not kept: ${[...this.droppedXattrs].sort().join(', ')}`,
      );
    return lossy;
  }

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
        const reason = skipReason(error);
        if (reason === undefined) throw error;
        this.skipped.push({ path: childDisplay, reason });
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
    const xattrs = await this.xattrs(path);
    const common = {
      ...encodeName(name),
      mode: Number(stat.mode & 0o7777n),
      mtimeNs: stat.mtimeNs.toString(),
      ctimeNs: stat.ctimeNs.toString(),
      uid: Number(stat.uid),
      gid: Number(stat.gid),
      ...(xattrs.length ? { xattrs } : {}),
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
    const inode = Number(stat.ino);
    // Atimes of files only: the backup's own readdir and readlink move those of directories and symlinks, and
    // storing them would make every tree new in every backup.
    const entry: TreeEntry = {
      ...common,
      type: 'file',
      atimeNs: stat.atimeNs.toString(),
      size: Number(stat.size),
      inode,
    };
    const linkKey = stat.nlink > 1n ? `${stat.dev}:${stat.ino}` : undefined;
    if (linkKey) {
      const unreadable = this.unreadableLinks.get(linkKey);
      if (unreadable) {
        this.skipped.push({
          path: display,
          reason: `hard link of ${unreadable.path}, which could not be read (${unreadable.reason})`,
        });
        return undefined;
      }
      const existing = this.hardLinks.get(linkKey);
      if (existing !== undefined) return this.counted(display, { ...entry, link: existing });
    }
    const stored = await this.fileContent(path, display, entry, stat, previous).catch((error: unknown) => {
      if (linkKey) this.unreadableLinks.set(linkKey, { path: display, reason: skipReason(error) ?? 'read failed' });
      throw error;
    });
    if (linkKey) {
      stored.link = this.hardLinks.size + 1;
      this.hardLinks.set(linkKey, stored.link);
    }
    return this.counted(display, stored);
  }

  /** Counts a file name backed up (in the summary and per top-level directory). */
  private counted(display: string, entry: TreeEntry): TreeEntry {
    this.summary.files++;
    const top = display.indexOf('/', 1) === -1 ? '.' : display.slice(1, display.indexOf('/', 1));
    this.filesPerTop.set(top, (this.filesPerTop.get(top) ?? 0) + 1);
    return entry;
  }

  /** The entry with its content: the parent's when the file is unchanged, else read and stored. */
  private async fileContent(
    path: Buffer,
    display: string,
    entry: TreeEntry,
    stat: BigIntStats,
    previous: TreeEntry | undefined,
  ): Promise<TreeEntry> {
    if (
      previous?.type === 'file' &&
      previous.content &&
      previous.size === entry.size &&
      previous.mtimeNs === entry.mtimeNs &&
      previous.ctimeNs === entry.ctimeNs &&
      previous.inode === entry.inode
    ) {
      this.meter.add(entry.size ?? 0, 1);
      this.summary.chunks += previous.content.length;
      return { ...entry, content: previous.content };
    }
    const { content, size } = await this.content(createReadStream(path));
    this.meter.add(0, 1);
    const after = await lstat(path, { bigint: true });
    if (after.mtimeNs !== stat.mtimeNs || after.ctimeNs !== stat.ctimeNs || BigInt(size) !== stat.size)
      this.skipped.push({ path: display, reason: 'changed while being read: stored as read, may be inconsistent' });
    return { ...entry, size, content };
  }

  /** The extended attributes kept (namespaces: file-metadata.ts); the names of others are noted as lossy. */
  private async xattrs(path: Buffer): Promise<NonNullable<TreeEntry['xattrs']>> {
    const all = (await this.metadata?.readXattrs(path)) ?? [];
    for (const xattr of all) if (!keptXattr(xattr.name)) this.droppedXattrs.add(xattr.name);
    return all.filter((x) => keptXattr(x.name)).map((x) => ({ name: x.name, valueB64: x.value.toString('base64') }));
  }
}

/** Why a path that could not be backed up is skipped rather than failing the backup; undefined: fail. */
function skipReason(error: unknown): string | undefined {
  switch ((error as NodeJS.ErrnoException).code) {
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

function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return entries.sort((a, b) => Buffer.compare(decodeName(a), decodeName(b)));
}
