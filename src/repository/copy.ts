import type { ChunkStore } from './chunk-store.ts';
import type { ChunkId, ChunkType } from './format.ts';
import { InOrder } from './in-order.ts';
import { whileHolding } from './lock.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import type { Repository } from './repository.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeTree, encodeTree, type TreeEntry } from './tree.ts';

export interface CopyReport {
  copied: string[];
  skipped: string[];
  uploadedBytes: number;
  /**
   * `shared`: the destination shares the source's chunk identity (replica.ts), so only trees and the
   * chunks it lacks were read; `reidentified`: every chunk was read and given the destination's id.
   */
  identity: 'shared' | 'reidentified';
}

/**
 * Copies snapshots to another repository, re-encrypted for its keys. When the destination shares the
 * source's chunk identity, a chunk has the same id in both: the trees are read and walked, and only
 * the chunks the destination lacks are read. Otherwise chunk ids there come from its own id key, so
 * every chunk is read and re-identified. Either way only chunks the destination lacks are uploaded. A
 * snapshot keeps its id; one already present is skipped. The snapshot is written last, after its packs
 * and index, as in a backup. Shared locks on both repositories.
 */
export async function copySnapshots(
  source: Repository,
  destination: Repository,
  snapshots: Snapshot[],
  options: { onProgress?: ProgressListener } = {},
): Promise<CopyReport> {
  // Both locks read their index again: no prune deletes what is being read, or what the destination's
  // index said it holds, until the copy is done.
  const sourceLock = await source.lock(false);
  return whileHolding(sourceLock, async () => {
    for (const snapshot of snapshots) await source.requireSnapshot(snapshot);
    return copyLocked(source, destination, snapshots, options);
  });
}

async function copyLocked(
  source: Repository,
  destination: Repository,
  snapshots: Snapshot[],
  options: { onProgress?: ProgressListener },
): Promise<CopyReport> {
  const shared = source.sharesChunkIdentityWith(destination);
  const report: CopyReport = {
    copied: [],
    skipped: [],
    uploadedBytes: 0,
    identity: shared ? 'shared' : 'reidentified',
  };
  const lock = await destination.lock(false);
  return whileHolding(lock, async () => {
    const present = new Set((await destination.snapshots()).map((s) => s.id));
    for (const snapshot of [...snapshots].reverse()) {
      if (present.has(snapshot.id)) {
        report.skipped.push(snapshot.id);
        continue;
      }
      const meter = new ProgressMeter('copy', options.onProgress, snapshot.summary.logicalBytes);
      const writer = destination.chunkStore({ onUpload: (bytes) => meter.uploaded(bytes) });
      const reader = source.chunkStore();
      const root = shared
        ? await new SharedIdentityCopier(source, reader, destination, writer, meter).tree(snapshot.root)
        : await new TreeCopier(reader, writer, snapshot, meter).tree(snapshot.root);
      const index = await writer.flush();
      if (index.packs.length > 0) await destination.saveIndex(index);
      await destination.saveSnapshot({ ...snapshot, root });
      report.copied.push(snapshot.id);
      report.uploadedBytes += meter.done().uploadedBytes;
    }
    return report;
  });
}

/** Reads `ids` from `from` in order, `READ_AHEAD` at a time, handing each to `use`. */
async function readInOrder(
  from: ChunkStore,
  ids: ChunkId[],
  use: (id: ChunkId, data: Buffer) => Promise<void>,
): Promise<void> {
  const reads = new InOrder<Buffer>();
  for (const id of ids.slice(0, READ_AHEAD)) reads.add(from.get(id));
  for (let i = 0; i < ids.length; i++) {
    const data = (await reads.next()) as Buffer;
    const ahead = ids[i + READ_AHEAD];
    if (ahead) reads.add(from.get(ahead));
    await use(ids[i] as ChunkId, data);
  }
}

const READ_AHEAD = 8;

/**
 * Copies into a destination that shares the source's chunk identity: ids are kept, so trees are read
 * and walked but nothing is re-hashed, and a data chunk is read only when the destination lacks it.
 */
class SharedIdentityCopier {
  /** Chunks already handled in this copy (stored, or found in the destination). */
  private readonly seen = new Set<ChunkId>();

  constructor(
    private readonly source: Repository,
    private readonly from: ChunkStore,
    private readonly destination: Repository,
    private readonly to: ChunkStore,
    private readonly meter: ProgressMeter,
  ) {}

  async tree(id: ChunkId): Promise<ChunkId> {
    if (this.seen.has(id)) return id;
    this.seen.add(id);
    const data = await this.from.get(id);
    for (const entry of decodeTree(data).entries) {
      if (entry.subtree) await this.tree(entry.subtree);
      if (entry.content) await this.content(entry.content);
    }
    // After its children, as every chunk it names must be in a pack of this copy or already indexed.
    await this.store(id, 'tree', data);
    return id;
  }

  private async content(ids: ChunkId[]): Promise<void> {
    const missing: ChunkId[] = [];
    for (const id of ids) {
      if (this.seen.has(id)) continue;
      this.seen.add(id);
      if (this.destination.index.has(id)) this.meter.add(this.source.index.get(id)?.rawLength ?? 0);
      else missing.push(id);
    }
    await readInOrder(this.from, missing, async (id, data) => {
      await this.store(id, 'data', data);
      this.meter.add(data.length);
    });
  }

  private async store(id: ChunkId, type: ChunkType, data: Buffer): Promise<void> {
    if (!this.destination.index.has(id)) await this.to.putRepacked(id, type, data);
  }
}

class TreeCopier {
  /** Source id → destination id, so chunks shared within the snapshot are read once. */
  private readonly mapped = new Map<ChunkId, ChunkId>();

  constructor(
    private readonly from: ChunkStore,
    private readonly to: ChunkStore,
    private readonly snapshot: Snapshot,
    private readonly meter: ProgressMeter,
  ) {}

  async tree(id: ChunkId): Promise<ChunkId> {
    const known = this.mapped.get(id);
    if (known) return known;
    const tree = decodeTree(await this.from.get(id));
    const entries: TreeEntry[] = [];
    for (const entry of tree.entries) {
      const copy = { ...entry };
      if (entry.subtree) copy.subtree = await this.tree(entry.subtree);
      if (entry.content) copy.content = await this.content(entry.content);
      entries.push(copy);
    }
    const result = await this.to.put(
      this.snapshot.chainId,
      'tree',
      encodeTree({ version: tree.version ?? 1, entries }),
    );
    this.mapped.set(id, result.id);
    return result.id;
  }

  /** Re-identifies file content in the destination, reading ahead from the source. */
  private async content(ids: ChunkId[]): Promise<ChunkId[]> {
    const out: ChunkId[] = [];
    await readInOrder(this.from, ids, async (id, data) => {
      const mapped = this.mapped.get(id) ?? (await this.to.put(this.snapshot.chainId, 'data', data)).id;
      this.mapped.set(id, mapped);
      this.meter.add(data.length);
      out.push(mapped);
    });
    return out;
  }
}
