import type { ChunkReader } from './chunk-reader.ts';
import type { ChunkId } from './format.ts';

/** Trees read ahead at most: by count, and by their decoded bytes. */
const TREES_AHEAD = 64;
const BYTES_AHEAD = 8 * 1024 * 1024;

/**
 * The trees of an incremental's parent snapshot, read as the walk reaches their directories: the next
 * subdirectories' trees together, one ranged read per run of them in a pack (trees have packs of their own, where
 * a snapshot's lie side by side: chunk-store.ts), instead of a read each. A nothing-changed backup of 1,000
 * directories otherwise spends most of its main thread opening, reading and closing pack files; on an object
 * store, it makes 1,000 requests.
 */
export class ParentTrees {
  private readonly ahead = new Map<ChunkId, Promise<Buffer>>();

  constructor(private readonly reader: ChunkReader) {}

  /**
   * Reads the trees `ids` from `from` on (the next subdirectories', in walk order) ahead, together, once those
   * already read ahead are fewer than half the bounds; as many as the bounds admit (the rest: when asked for, or by
   * a later call).
   */
  readAhead(ids: readonly ChunkId[], from: number): void {
    const wanted = new Set<ChunkId>();
    let bytes = 0;
    let already = 0;
    for (const id of ids.slice(from, from + TREES_AHEAD)) {
      const length = this.reader.lengthOf(id);
      if (length === undefined || bytes + length > BYTES_AHEAD) break;
      bytes += length;
      if (this.ahead.has(id)) already++;
      else wanted.add(id);
    }
    if (already >= TREES_AHEAD / 2 || wanted.size < 2) return;
    const deliver = new Map<ChunkId, (data: Buffer) => void>();
    const trees = new Map([...wanted].map((id) => [id, new Promise<Buffer>((resolve) => deliver.set(id, resolve))]));
    const read = this.reader.read(wanted, async (id, data) => deliver.get(id)?.(data), { cache: false });
    for (const [id, tree] of trees) {
      // A read that fails leaves each tree it did not deliver to a read of its own, which names what is damaged.
      const ahead = Promise.race([
        tree,
        read.then(
          () => tree,
          () => this.reader.get(id),
        ),
      ]);
      ahead.catch(() => {}); // surfaces when taken (a directory gone by then never takes it)
      this.ahead.set(id, ahead);
    }
  }

  /** The tree `id`: read ahead, or read now. Taken once: asked again, it is read again. */
  get(id: ChunkId): Promise<Buffer> {
    const tree = this.ahead.get(id);
    if (!tree) return this.reader.get(id);
    this.ahead.delete(id);
    return tree;
  }
}
