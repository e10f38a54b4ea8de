import { withContext } from '../errors.ts';
import { ChunkReader } from './chunk-reader.ts';
import { compress } from './compression.ts';
import { hmac } from './crypto.ts';
import { blobNames, type ChainId, type ChunkId, type ChunkType } from './format.ts';
import type { ChunkIndex, IndexFile } from './index.ts';
import type { MasterKeys } from './keys.ts';
import { PackWriter } from './pack.ts';
import type { Storage } from './storage/storage.ts';

export interface ChunkStoreOptions {
  /** A pack is uploaded once it reaches this size. */
  packSize?: number;
  /** Packs uploading at once; more waits (back-pressure on the reader of the source). */
  parallelUploads?: number;
  onUpload?: (bytes: number) => void;
}

export interface PutResult {
  id: ChunkId;
  /** False when the chunk was already stored (dedup). */
  stored: boolean;
}

/**
 * The content layer: stores chunks in packs (dedup by id, compress, encrypt, upload in parallel with
 * back-pressure) and reads them back. One writer session per backup; `flush` returns the index file
 * describing the packs it wrote, which the caller saves before the snapshot (write order: packs,
 * index, snapshot).
 */
export class ChunkStore {
  private pack: PackWriter;
  private readonly pending = new Set<ChunkId>();
  private readonly uploads = new Set<Promise<void>>();
  private readonly written: IndexFile['packs'] = [];
  private failure: unknown;
  private readonly packSize: number;
  private readonly parallelUploads: number;
  /** Reads chunks (restore batches its reads through it). */
  readonly reader: ChunkReader;

  constructor(
    private readonly storage: Storage,
    private readonly keys: MasterKeys,
    private readonly index: ChunkIndex,
    private readonly options: ChunkStoreOptions = {},
  ) {
    this.pack = new PackWriter(keys.encryption);
    this.packSize = options.packSize ?? 16 * 1024 * 1024;
    this.parallelUploads = options.parallelUploads ?? 4;
    this.reader = new ChunkReader(storage, keys.encryption, index);
  }

  chunkId(chain: ChainId, data: Buffer): ChunkId {
    return hmac(this.keys.chunkId, Buffer.from(chain, 'hex'), data).toString('hex') as ChunkId;
  }

  /** Stores a chunk unless a chunk with its id (same chain, same content) exists. Safe to call concurrently. */
  put(chain: ChainId, type: ChunkType, data: Buffer): Promise<PutResult> {
    const id = this.chunkId(chain, data);
    if (this.index.has(id) || this.pending.has(id)) return Promise.resolve({ id, stored: false });
    return this.store(id, type, data);
  }

  /** Writes an existing chunk into a new pack (prune repacks the live chunks of mostly-dead packs). */
  putRepacked(id: ChunkId, type: ChunkType, data: Buffer): Promise<PutResult> {
    return this.store(id, type, data);
  }

  private async store(id: ChunkId, type: ChunkType, data: Buffer): Promise<PutResult> {
    this.pending.add(id);
    const compressed = await compress(data);
    this.throwIfFailed();
    this.pack.add(id, type, compressed.codec, data.length, compressed.data);
    if (this.pack.size >= this.packSize) await this.rotate();
    return { id, stored: true };
  }

  /** Uploads what is buffered and waits for every upload; returns the index of what this session wrote. */
  async flush(): Promise<IndexFile> {
    if (this.pack.count > 0) await this.rotate();
    await Promise.all(this.uploads);
    this.throwIfFailed();
    return { version: 1, packs: [...this.written] };
  }

  private async rotate(): Promise<void> {
    const { id, bytes, entries } = this.pack.finish();
    this.pack = new PackWriter(this.keys.encryption);
    const upload = this.storage
      .put(blobNames.pack(id), bytes)
      .then(() => {
        this.written.push({ id, size: bytes.length, chunks: entries });
        this.index.addPack(id, bytes.length, entries);
        for (const e of entries) this.pending.delete(e.id);
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
