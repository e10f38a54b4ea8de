import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, readdir, symlink, utimes } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { TidemarkError, withContext } from '../errors.ts';
import type { ChunkStore } from './chunk-store.ts';
import type { ChunkId } from './format.ts';
import { InOrder } from './in-order.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeName, decodeTarget, decodeTree, type TreeEntry } from './tree.ts';

export interface RestoreOptions {
  onProgress?: ProgressListener;
  /** Chunks fetched ahead of the one being written. */
  readAhead?: number;
}

/** Restores a snapshot's tree into `target`, which must be empty or missing (nothing is overwritten). */
export async function restoreTree(
  repository: Repository,
  snapshot: Snapshot,
  target: string,
  options: RestoreOptions = {},
): Promise<void> {
  await mkdir(target, { recursive: true });
  if ((await readdir(target)).length > 0)
    throw new TidemarkError(
      'InvalidArgument',
      `restore target ${target} is not empty; restore into an empty directory`,
    );
  await underLock(repository, snapshot, async () => {
    const run = new RestoreRun(
      repository.chunkStore(),
      new ProgressMeter('restore', options.onProgress, snapshot.summary.logicalBytes),
      options.readAhead ?? 8,
    );
    await run.directory(snapshot.root, Buffer.from(target));
    run.meter.done();
  });
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
    await run.writeContent(entry.content ?? [], out);
    run.meter.done();
  });
}

/** Holds a shared lock (and reads the index again under it), so no prune deletes what is being read. */
async function underLock(repository: Repository, snapshot: Snapshot, restore: () => Promise<void>): Promise<void> {
  const lock = await repository.lock(false);
  try {
    await repository.requireSnapshot(snapshot);
    await restore();
  } finally {
    await lock.release();
  }
}

class RestoreRun {
  private readonly linkTargets = new Map<number, Buffer>();

  constructor(
    private readonly store: ChunkStore,
    readonly meter: ProgressMeter,
    private readonly readAhead: number,
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
      await this.writeContent(entry.content ?? [], createWriteStream(path, { flags: 'wx', mode: 0o600 }));
      this.meter.add(0, 1);
      if (entry.link !== undefined) this.linkTargets.set(entry.link, path);
    }
    await setMetadata(entry, path);
  }

  /** Fetches chunks ahead (in parallel) and writes them in order, respecting the writer's back-pressure. */
  async writeContent(content: ChunkId[], out: Writable): Promise<void> {
    const fetching = new InOrder<Buffer>();
    let next = 0;
    const fill = () => {
      while (fetching.size < this.readAhead && next < content.length)
        fetching.add(this.store.get(content[next++] as ChunkId));
    };
    try {
      fill();
      while (fetching.size > 0) {
        const data = (await fetching.next()) as Buffer;
        fill();
        this.meter.add(data.length);
        if (out.destroyed)
          throw new TidemarkError('Internal', 'the restore output was closed before the restore finished');
        if (!out.write(data)) await drained(out);
      }
      out.end();
      await finished(out);
    } catch (error) {
      // Never leave a file that looks complete: the stream is destroyed, the error surfaces.
      out.destroy();
      await fetching.drain();
      throw withContext('restoring', error);
    }
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

async function setMetadata(entry: TreeEntry, path: Buffer): Promise<void> {
  if (process.getuid?.() === 0) await lchown(path, entry.uid, entry.gid).catch(() => undefined);
  // Seconds as a double keep microseconds; the half microsecond keeps the conversion to nanoseconds from
  // rounding below the stored time.
  const seconds = (Number(BigInt(entry.mtimeNs) / 1000n) + 0.5) / 1e6;
  if (entry.type === 'symlink') {
    await lutimes(path, seconds, seconds);
    return;
  }
  await chmod(path, entry.mode);
  await utimes(path, seconds, seconds);
}
