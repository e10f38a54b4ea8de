import type { ChunkStore } from './chunk-store.ts';
import type { ChunkId } from './format.ts';
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
}

/**
 * Copies snapshots to another repository, re-encrypted for its keys: chunk ids there come from its own
 * id key, so every chunk is read and re-identified, but only chunks the destination lacks are
 * uploaded. A snapshot keeps its id; one already present is skipped. The snapshot is written last,
 * after its packs and index, as in a backup. Shared locks on both repositories.
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
  const report: CopyReport = { copied: [], skipped: [], uploadedBytes: 0 };
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
      const copier = new TreeCopier(source.chunkStore(), writer, snapshot, meter);
      const root = await copier.tree(snapshot.root);
      const index = await writer.flush();
      if (index.packs.length > 0) await destination.saveIndex(index);
      await destination.saveSnapshot({ ...snapshot, root });
      report.copied.push(snapshot.id);
      report.uploadedBytes += meter.done().uploadedBytes;
    }
    return report;
  });
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
    const readAhead = 8;
    const reads = new InOrder<Buffer>();
    for (const id of ids.slice(0, readAhead)) reads.add(this.from.get(id));
    const out: ChunkId[] = [];
    for (let i = 0; i < ids.length; i++) {
      const data = (await reads.next()) as Buffer;
      const ahead = ids[i + readAhead];
      if (ahead) reads.add(this.from.get(ahead));
      const id = ids[i] as ChunkId;
      const mapped = this.mapped.get(id) ?? (await this.to.put(this.snapshot.chainId, 'data', data)).id;
      this.mapped.set(id, mapped);
      this.meter.add(data.length);
      out.push(mapped);
    }
    return out;
  }
}
