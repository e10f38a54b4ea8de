import type { ChunkId, ChunkType, PackId } from './format.ts';
import type { PackEntry } from './pack.ts';

/** Where a chunk lives. */
export interface ChunkLocation {
  pack: PackId;
  type: ChunkType;
  codec: number;
  rawLength: number;
  offset: number;
  length: number;
}

/** `index/<id>`: the packs one writer added (encrypted JSON). `supersedes` lists index files it replaces (prune). */
export interface IndexFile {
  version: 1;
  packs: { id: PackId; size: number; chunks: PackEntry[] }[];
  supersedes?: string[];
}

/**
 * The index files that count, by id: those no present file supersedes. A file superseded through a chain
 * is named by a present file too (a prune supersedes every file it found, superseded ones included), so
 * a prune that crashed before deleting what it replaced leaves both, and the next prune supersedes both.
 */
export function liveIndexFiles(files: ReadonlyMap<string, IndexFile>): string[] {
  const superseded = new Set([...files.values()].flatMap((file) => file.supersedes ?? []));
  return [...files.keys()].filter((id) => !superseded.has(id));
}

/**
 * The in-memory index: chunk id → location, and pack id → size. An id listed by several packs maps to the first
 * (any of them holds the same bytes).
 *
 * Index files are added trees first: their data chunks join the map on the first lookup that may need them (`has`,
 * a `get` of an id not found among the trees, anything counting or listing chunks). An incremental reads the
 * parent's trees right away but looks up data chunks only for what changed, and a nothing-changed backup of
 * 200,000 small files spent ~0.1 s and ~20 MB mapping data chunks it never asked for.
 */
export class ChunkIndex {
  private readonly chunks = new Map<ChunkId, ChunkLocation>();
  private readonly packs = new Map<PackId, { size: number; entries: PackEntry[] }>();
  /** Packs of index files whose data chunks are not mapped yet, in the order they were added. */
  private deferred: PackId[] = [];

  addPack(id: PackId, size: number, entries: PackEntry[]): void {
    this.complete();
    this.packs.set(id, { size, entries });
    this.map(id, entries, () => true);
  }

  /** Adds an index file's packs: their trees now, their data chunks once a lookup needs them (see the class). */
  addFile(file: IndexFile): void {
    for (const pack of file.packs) {
      this.packs.set(pack.id, { size: pack.size, entries: pack.chunks });
      this.map(pack.id, pack.chunks, (e) => e.type === 'tree');
      this.deferred.push(pack.id);
    }
  }

  has(id: ChunkId): boolean {
    this.complete();
    return this.chunks.has(id);
  }

  get(id: ChunkId): ChunkLocation | undefined {
    const found = this.chunks.get(id);
    if (found || this.deferred.length === 0) return found;
    this.complete();
    return this.chunks.get(id);
  }

  get packCount(): number {
    return this.packs.size;
  }

  get chunkCount(): number {
    this.complete();
    return this.chunks.size;
  }

  packIds(): PackId[] {
    return [...this.packs.keys()];
  }

  packSize(id: PackId): number | undefined {
    return this.packs.get(id)?.size;
  }

  chunksOf(id: PackId): ChunkId[] {
    return (this.packs.get(id)?.entries ?? []).map((e) => e.id);
  }

  /** Maps the chunks of a pack that `which` picks and that no pack added before maps. */
  private map(pack: PackId, entries: PackEntry[], which: (entry: PackEntry) => boolean): void {
    for (const e of entries) {
      if (!which(e) || this.chunks.has(e.id)) continue;
      const { type, codec, rawLength, offset, length } = e;
      this.chunks.set(e.id, { pack, type, codec, rawLength, offset, length });
    }
  }

  /** Maps the data chunks deferred by `addFile`, in the order their packs were added. */
  private complete(): void {
    if (this.deferred.length === 0) return;
    const deferred = this.deferred;
    this.deferred = [];
    for (const pack of deferred) this.map(pack, this.packs.get(pack)?.entries ?? [], (e) => e.type !== 'tree');
  }

  /** Index file entries of the given packs, for writing a new index (prune). */
  toFile(packs: Iterable<PackId>): IndexFile {
    const out: IndexFile = { version: 1, packs: [] };
    for (const pack of packs) {
      const info = this.packs.get(pack);
      if (info) out.packs.push({ id: pack, size: info.size, chunks: info.entries });
    }
    return out;
  }
}
