import { withContext } from '../errors.ts';
import { ChunkReader, isLocal } from './chunk-reader.ts';
import { blobNames, type ChainId, type ChunkId, type ChunkType } from './format.ts';
import type { ChunkIndex } from './index.ts';
import { type IndexFile, rowsOf } from './index-file.ts';
import type { MasterKeys } from './keys.ts';
import { PackWriter } from './pack.ts';
import { chunkIdOf } from './pipeline/chunk-work.ts';
import { type ChunkPipeline, type Slot, sharedPipeline } from './pipeline/pool.ts';
import { SmallChunkBatch } from './pipeline/small-chunk-batch.ts';
import type { Storage } from './storage/storage.ts';

export interface ChunkStoreOptions {
  /** A pack is uploaded once it reaches this size. */
  packSize?: number;
  /** Packs uploading at once; more waits (back-pressure on the reader of the source). Default 4, 2 on file storage. */
  parallelUploads?: number;
  onUpload?: (bytes: number) => void;
  /** Worker threads that hash, compress and seal chunks; default: the process's (sized from the CPU quota). */
  pipeline?: ChunkPipeline;
}

export interface PutResult {
  id: ChunkId;
  /** False when the chunk was already stored (dedup). */
  stored: boolean;
}

/** A chunk: one buffer, or the pieces it is made of in order (chunkPartsStream), copied once for the workers. */
export type ChunkData = Uint8Array | readonly Uint8Array[];

/**
 * Chunks shorter than this (trees, small files) are identified on the calling thread and sealed on a worker in
 * batches (small-chunk-batch.ts): a message to a worker and back per chunk would cost more than the work.
 */
const SMALL_BELOW = 64 * 1024;
/** Batches of small chunks being sealed at once; the next small chunk waits for one (bounds memory). */
const BATCHES_SEALING = 4;
/** Room for the largest record of a default chunk beyond the pack size, so a pack buffer never grows. */
const PACK_MARGIN = 4 * 1024 * 1024 + 64 * 1024;
/**
 * Trees go into packs of their own, and smaller ones: a snapshot's trees then lie side by side, so an incremental
 * reads its parent's trees a run at a time (parent-trees.ts) and a restore finds them together, rather than one
 * read each among the data; the tree pack being filled holds at most this much memory.
 */
const TREE_PACK_SIZE = 4 * 1024 * 1024;

/**
 * The content layer: stores chunks in packs (dedup by id, compress, encrypt, upload in parallel with
 * back-pressure) and reads them back. One writer session per backup; `flush` returns the index file
 * describing the packs it wrote, which the caller saves before the snapshot (write order: packs,
 * index, snapshot).
 *
 * Storing a chunk: it is copied once into shared memory (a pipeline slot); a worker computes its id
 * and, told the chunk is new, compresses and seals it into the slot's output (one job per chunk),
 * which is copied into the pack buffer (hashed as it grows). Pack buffers are reused once uploaded.
 * A small chunk is identified on the calling thread and, when new, sealed with others in one job.
 * Data and trees fill packs of their own (see TREE_PACK_SIZE).
 */
export class ChunkStore {
  /**
   * The packs being filled, by the type of their chunks; each made on its first chunk (a store that only reads
   * holds no pack buffer).
   */
  private readonly packs = new Map<ChunkType, PackWriter>();
  private readonly pending = new Set<ChunkId>();
  /** Small chunks not yet sent to be sealed; the batches being sealed; emptied ones for reuse. */
  private batch: SmallChunkBatch | undefined;
  private readonly sealing = new Set<Promise<void>>();
  private readonly freeBatches: SmallChunkBatch[] = [];
  private readonly uploads = new Set<Promise<void>>();
  private readonly written: IndexFile['packs'] = [];
  private readonly freePackBuffers = new Map<ChunkType, Buffer[]>();
  private failure: unknown;
  private readonly packSize: number;
  private readonly parallelUploads: number;
  private readonly pipeline: ChunkPipeline;
  /** The keys in buffers of their own: a view of a larger one (Node's buffer pool) is posted to a worker whole. */
  private readonly chunkIdKey: Uint8Array;
  private readonly encryptionKey: Uint8Array;
  private chain: { id: ChainId; bytes: Uint8Array } | undefined;
  /** Reads chunks (restore batches its reads through it). */
  readonly reader: ChunkReader;

  constructor(
    private readonly storage: Storage,
    private readonly keys: MasterKeys,
    private readonly index: ChunkIndex,
    private readonly options: ChunkStoreOptions = {},
  ) {
    this.packSize = options.packSize ?? 16 * 1024 * 1024;
    this.parallelUploads = options.parallelUploads ?? (isLocal(storage) ? 2 : 4);
    this.pipeline = options.pipeline ?? sharedPipeline();
    this.chunkIdKey = Uint8Array.from(keys.chunkId);
    this.encryptionKey = Uint8Array.from(keys.encryption);
    this.reader = new ChunkReader(storage, keys.encryption, index);
  }

  chunkId(chain: ChainId, data: Buffer): ChunkId {
    return chunkIdOf(this.chunkIdKey, this.chainBytes(chain), data);
  }

  private chainBytes(chain: ChainId): Uint8Array {
    if (this.chain?.id !== chain) this.chain = { id: chain, bytes: Uint8Array.from(Buffer.from(chain, 'hex')) };
    return this.chain.bytes;
  }

  /** Stores a chunk unless a chunk with its id (same chain, same content) exists. Safe to call concurrently. */
  async put(chain: ChainId, type: ChunkType, data: ChunkData): Promise<PutResult> {
    const length = byteLength(data);
    if (length < SMALL_BELOW) {
      const parts = Array.isArray(data) ? (data as readonly Uint8Array[]) : [data as Uint8Array];
      const id = chunkIdOf(this.chunkIdKey, this.chainBytes(chain), ...parts);
      if (this.known(id)) return { id, stored: false };
      return this.storeSmall(id, type, parts, length);
    }
    const slot = await this.pipeline.acquire(length);
    let id: ChunkId | undefined;
    try {
      copyInto(data, slot.input);
      const { chunkIdKey, encryptionKey } = this;
      id = await this.pipeline.identify(slot, length, chunkIdKey, this.chainBytes(chain), encryptionKey);
      // The worker waits for this answer (see ChunkPipeline.identify): nothing awaited before it.
      if (this.known(id)) {
        this.pipeline.skip(slot);
        return { id, stored: false };
      }
      await this.seal(id, type, length, slot, () => this.pipeline.sealIdentified(slot));
    } catch (error) {
      throw withContext(`storing ${id ? `chunk ${id.slice(0, 12)}` : 'a chunk'} of ${length} bytes`, error);
    } finally {
      this.pipeline.release(slot);
    }
    await this.rotateIfFull(type);
    return { id, stored: true };
  }

  /** Writes an existing chunk into a new pack (prune repacks the live chunks of mostly-dead packs). */
  async putRepacked(id: ChunkId, type: ChunkType, data: Buffer): Promise<PutResult> {
    if (data.length < SMALL_BELOW) return this.storeSmall(id, type, [data], data.length);
    const slot = await this.pipeline.acquire(data.length);
    try {
      copyInto(data, slot.input);
      await this.seal(id, type, data.length, slot, () => this.pipeline.seal(slot, data.length, this.encryptionKey, id));
    } catch (error) {
      throw withContext(`storing chunk ${id.slice(0, 12)} of ${data.length} bytes`, error);
    } finally {
      this.pipeline.release(slot);
    }
    await this.rotateIfFull(type);
    return { id, stored: true };
  }

  private known(id: ChunkId): boolean {
    return this.index.has(id) || this.pending.has(id);
  }

  /** Adds a small chunk to the batch being gathered; sends it to be sealed once full. */
  private async storeSmall(id: ChunkId, type: ChunkType, parts: readonly Uint8Array[], length: number) {
    this.throwIfFailed();
    if (this.batch && !this.batch.fits(length)) this.sendBatch();
    this.batch ??= this.freeBatches.pop() ?? new SmallChunkBatch();
    this.batch.add(id, type, parts);
    this.pending.add(id);
    while (this.sealing.size >= BATCHES_SEALING) await Promise.race(this.sealing);
    this.throwIfFailed();
    return { id, stored: true };
  }

  /** Seals the gathered small chunks on a worker, then adds their records to the pack. */
  private sendBatch(): void {
    const batch = this.batch;
    if (!batch || batch.count === 0) return;
    this.batch = undefined;
    const sealed = this.pipeline
      .sealBatch(batch, this.encryptionKey)
      .then((records) => this.addBatch(batch, records))
      .catch((error: unknown) => {
        for (const id of batch.ids) this.pending.delete(id);
        this.failure ??= withContext(`sealing ${batch.count} small chunks`, error);
      })
      .finally(() => this.sealing.delete(sealed));
    this.sealing.add(sealed);
  }

  private async addBatch(batch: SmallChunkBatch, records: number[]): Promise<void> {
    const rotations: Promise<void>[] = [];
    let start = 0;
    let at = 0;
    for (const [i, id] of batch.ids.entries()) {
      const [codec, length] = [records[2 * i] as number, records[2 * i + 1] as number];
      const end = batch.ends[i] as number;
      const record = new Uint8Array(batch.output, at, length);
      const type = batch.types[i] as ChunkType;
      const pack = this.filling(type);
      pack.addSealed(id, type, codec, end - start, record);
      if (pack.size >= this.sizeOf(type)) rotations.push(this.rotate(type));
      at += length;
      start = end;
    }
    this.freeBatches.push(batch.clear());
    await Promise.all(rotations);
  }

  /** Seals the chunk in the slot on a worker (`sealing`) and adds it to the pack. */
  private async seal(
    id: ChunkId,
    type: ChunkType,
    length: number,
    slot: Slot,
    sealing: () => Promise<{ codec: number; length: number }>,
  ): Promise<void> {
    this.pending.add(id);
    try {
      const sealed = await sealing();
      this.throwIfFailed();
      this.filling(type).addSealed(id, type, sealed.codec, length, new Uint8Array(slot.output, 0, sealed.length));
    } catch (error) {
      this.pending.delete(id);
      throw error;
    }
  }

  /** Uploads what is buffered and waits for every upload; returns the index of what this session wrote. */
  async flush(): Promise<IndexFile> {
    this.sendBatch();
    await Promise.all(this.sealing);
    this.throwIfFailed();
    for (const [type, pack] of this.packs) if (pack.count > 0) await this.rotate(type);
    await Promise.all(this.uploads);
    this.throwIfFailed();
    // Tens of MiB that would otherwise live as long as the store, through the index and snapshot writes after this.
    this.freePackBuffers.clear();
    return { packs: [...this.written] };
  }

  /** The size at which a pack of chunks of `type` is uploaded. */
  private sizeOf(type: ChunkType): number {
    return type === 'tree' ? Math.min(this.packSize, TREE_PACK_SIZE) : this.packSize;
  }

  private filling(type: ChunkType): PackWriter {
    let pack = this.packs.get(type);
    if (!pack) {
      const buffer = this.freePackBuffers.get(type)?.pop() ?? Buffer.allocUnsafe(this.sizeOf(type) + PACK_MARGIN);
      pack = new PackWriter(this.keys.encryption, buffer);
      this.packs.set(type, pack);
    }
    return pack;
  }

  private async rotateIfFull(type: ChunkType): Promise<void> {
    if ((this.packs.get(type)?.size ?? 0) >= this.sizeOf(type)) await this.rotate(type);
  }

  private async rotate(type: ChunkType): Promise<void> {
    const { id, bytes, entries, buffer } = this.filling(type).finish();
    this.packs.delete(type);
    const upload = this.storage
      .put(blobNames.pack(id), bytes)
      .then(() => {
        const indexed = { id, size: bytes.length, rows: rowsOf(entries) };
        this.written.push(indexed);
        this.index.add(indexed);
        for (const e of entries) this.pending.delete(e.id);
        // Only after a successful upload: a failed one may still be reading it (an aborted multipart upload).
        const free = this.freePackBuffers.get(type) ?? [];
        free.push(buffer);
        this.freePackBuffers.set(type, free);
        this.options.onUpload?.(bytes.length);
      })
      .catch((error: unknown) => {
        this.failure ??= withContext(`uploading pack ${id.slice(0, 12)} to ${this.storage.description}`, error);
      })
      .finally(() => this.uploads.delete(upload));
    this.uploads.add(upload);
    while (this.uploads.size >= this.parallelUploads) await Promise.race(this.uploads);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Reads, decrypts, decompresses a chunk. Damage fails loudly with code Corrupt, naming chunk and pack. */
  get(id: ChunkId): Promise<Buffer> {
    return this.reader.get(id);
  }
}

function byteLength(data: ChunkData): number {
  if (!Array.isArray(data)) return (data as Uint8Array).length;
  let length = 0;
  for (const part of data as readonly Uint8Array[]) length += part.length;
  return length;
}

function copyInto(data: ChunkData, target: SharedArrayBuffer): void {
  const bytes = new Uint8Array(target);
  let at = 0;
  for (const part of Array.isArray(data) ? (data as readonly Uint8Array[]) : [data as Uint8Array]) {
    bytes.set(part, at);
    at += part.length;
  }
}
