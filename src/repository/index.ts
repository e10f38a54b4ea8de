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

/** The in-memory index: chunk id → location, and pack id → size. */
export class ChunkIndex {
  private readonly chunks = new Map<ChunkId, ChunkLocation>();
  private readonly packs = new Map<PackId, { size: number; entries: PackEntry[] }>();

  addPack(id: PackId, size: number, entries: PackEntry[]): void {
    this.packs.set(id, { size, entries });
    for (const e of entries) {
      if (!this.chunks.has(e.id))
        this.chunks.set(e.id, {
          pack: id,
          type: e.type,
          codec: e.codec,
          rawLength: e.rawLength,
          offset: e.offset,
          length: e.length,
        });
    }
  }

  addFile(file: IndexFile): void {
    for (const pack of file.packs) this.addPack(pack.id, pack.size, pack.chunks);
  }

  has(id: ChunkId): boolean {
    return this.chunks.has(id);
  }

  get(id: ChunkId): ChunkLocation | undefined {
    return this.chunks.get(id);
  }

  get packCount(): number {
    return this.packs.size;
  }

  get chunkCount(): number {
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
