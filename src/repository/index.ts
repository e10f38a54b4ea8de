import type { ChunkId, ChunkType, PackId } from './format.ts';
import { type IndexedPack, type IndexFile, locationAt, ROW_BYTES, rowCount } from './index-file.ts';

/** Where a chunk lives. */
export interface ChunkLocation {
  pack: PackId;
  type: ChunkType;
  codec: number;
  rawLength: number;
  offset: number;
  length: number;
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

/** A pack as the index holds it: its rows are numbered from `firstRow` on. */
interface AddedPack extends IndexedPack {
  firstRow: number;
}

/**
 * The in-memory index: chunk id → location, and pack id → size. An id listed by several packs maps to the first
 * (any of them holds the same bytes).
 *
 * Compact, because every backup, restore and copy loads it whole: the packs' rows (`index-file.ts`, 46 bytes a
 * chunk, one buffer per index file read) and an open-addressing table of row numbers keyed by the id's first
 * four bytes (ids are HMAC or SHA-256 outputs, so uniform). About 58 bytes a chunk, against ~300 for a Map of
 * hex strings to objects; a lookup decodes the hex id into a scratch buffer and compares bytes.
 */
export class ChunkIndex {
  /** Every pack added, in order; a pack id added twice keeps both (its rows are the same), the last is listed. */
  private readonly added: AddedPack[] = [];
  private readonly packs = new Map<PackId, number>();
  /** The number in `added` of each row's pack. */
  private rowPack = new Uint32Array(1024);
  private rows = 0;
  /** Row number + 1 of each mapped id, 0 for a free slot; never more than half full. */
  private slots = new Int32Array(2048);
  private mapped = 0;
  private readonly scratch = Buffer.alloc(32);

  addFile(file: IndexFile): void {
    this.reserve(file.packs.reduce((sum, p) => sum + rowCount(p.rows), 0));
    for (const pack of file.packs) this.add(pack);
  }

  has(id: ChunkId): boolean {
    return this.find(id) >= 0;
  }

  get(id: ChunkId): ChunkLocation | undefined {
    const row = this.find(id);
    if (row < 0) return undefined;
    const pack = this.packOfRow(row);
    return { pack: pack.id, ...locationAt(pack.rows, row - pack.firstRow) };
  }

  get packCount(): number {
    return this.packs.size;
  }

  get chunkCount(): number {
    return this.mapped;
  }

  packIds(): PackId[] {
    return [...this.packs.keys()];
  }

  packSize(id: PackId): number | undefined {
    return this.packOf(id)?.size;
  }

  chunksOf(id: PackId): ChunkId[] {
    const rows = this.packOf(id)?.rows;
    if (!rows) return [];
    return Array.from(
      { length: rowCount(rows) },
      (_, i) => rows.toString('hex', i * ROW_BYTES, i * ROW_BYTES + 32) as ChunkId,
    );
  }

  /** Index file entries of the given packs, for writing a new index (prune, repair). */
  toFile(packs: Iterable<PackId>): IndexFile {
    const out: IndexFile = { packs: [] };
    for (const id of packs) {
      const pack = this.packOf(id);
      if (pack) out.packs.push({ id, size: pack.size, rows: pack.rows });
    }
    return out;
  }

  private packOf(id: PackId): AddedPack | undefined {
    const n = this.packs.get(id);
    return n === undefined ? undefined : this.added[n];
  }

  add(pack: IndexedPack): void {
    const count = rowCount(pack.rows);
    const number = this.added.length;
    this.reserve(count);
    this.added.push({ ...pack, firstRow: this.rows });
    this.packs.set(pack.id, number);
    for (let i = 0; i < count; i++) {
      const row = this.rows++;
      this.rowPack[row] = number;
      this.insert(row, pack.rows, i * ROW_BYTES);
    }
  }

  /** Room for `more` rows, and a table that stays at most half full with them. */
  private reserve(more: number): void {
    const rows = this.rows + more;
    if (rows > this.rowPack.length) {
      const grown = new Uint32Array(Math.max(rows, this.rowPack.length * 2));
      grown.set(this.rowPack.subarray(0, this.rows));
      this.rowPack = grown;
    }
    if (rows * 2 <= this.slots.length) return;
    let size = this.slots.length;
    while (rows * 2 > size) size *= 2;
    const old = this.slots;
    this.slots = new Int32Array(size);
    for (const slot of old) if (slot > 0) this.place(slot - 1, this.idBytes(slot - 1));
  }

  /** Maps the id of `row` unless an earlier row maps it. */
  private insert(row: number, rows: Buffer, at: number): void {
    if (this.lookup(rows, at) >= 0) return;
    this.place(row, rows.subarray(at, at + 32));
    this.mapped++;
  }

  private place(row: number, id: Buffer): void {
    const mask = this.slots.length - 1;
    let slot = id.readUInt32LE(0) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = row + 1;
  }

  /** The row mapping the 32-byte id at `at` in `bytes`, or -1. */
  private lookup(bytes: Buffer, at: number): number {
    const mask = this.slots.length - 1;
    for (let slot = bytes.readUInt32LE(at) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return -1;
      const row = entry - 1;
      const pack = this.packOfRow(row);
      const rowAt = (row - pack.firstRow) * ROW_BYTES;
      if (pack.rows.compare(bytes, at, at + 32, rowAt, rowAt + 32) === 0) return row;
    }
  }

  private find(id: ChunkId): number {
    if (id.length !== 64 || this.scratch.write(id, 'hex') !== 32) return -1;
    return this.lookup(this.scratch, 0);
  }

  private idBytes(row: number): Buffer {
    const pack = this.packOfRow(row);
    const at = (row - pack.firstRow) * ROW_BYTES;
    return pack.rows.subarray(at, at + 32);
  }

  private packOfRow(row: number): AddedPack {
    return this.added[this.rowPack[row] as number] as AddedPack;
  }
}
