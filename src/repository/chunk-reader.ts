import { isCode, TidemarkError, withContext } from '../errors.ts';
import { blobNames, type ChunkId, type PackId } from './format.ts';
import { InOrder } from './in-order.ts';
import type { ChunkIndex, ChunkLocation } from './index.ts';
import { decodeRecord } from './pack.ts';
import type { Storage } from './storage/storage.ts';

const MiB = 1024 * 1024;

/** A chunk to read and where its record is. */
export interface PlannedRecord {
  id: ChunkId;
  location: ChunkLocation;
}

/** One ranged read of a pack, covering the records listed (in pack order). */
export interface PackRead {
  pack: PackId;
  offset: number;
  length: number;
  records: PlannedRecord[];
}

export interface ReadLimits {
  /** Records this close (bytes between them) are read in one range; the gap is read and dropped. */
  maxGap: number;
  /** A range is not extended past this many bytes (a single larger record is read alone). */
  maxLength: number;
}

/**
 * A pack is closed once it reaches 16 MiB (ChunkStore), plus its last record, so 32 MiB reads a whole pack in one
 * request; 256 KiB of gap costs less than another request on an object store.
 */
export const DEFAULT_READ_LIMITS: ReadLimits = { maxGap: 256 * 1024, maxLength: 32 * MiB };

/**
 * On a local filesystem a request costs a system call, not a round trip: small reads one at a time keep as many
 * chunks in flight with a fraction of the memory (measured: peak RSS back to the one-chunk-at-a-time restore's).
 */
export const LOCAL_READ_LIMITS: ReadLimits = { maxGap: 256 * 1024, maxLength: 4 * MiB };

/** Whether reads of `storage` are local (file storage, whose description is a file: URL, wrapped or not). */
export function isLocal(storage: Pick<Storage, 'description'>): boolean {
  return storage.description.startsWith('file:');
}

/**
 * Groups records into ranged reads: by pack (packs in the order first named), in pack order, merging records
 * at most `maxGap` apart while the range stays within `maxLength`. A chunk named twice is read once.
 */
export function planReads(records: Iterable<PlannedRecord>, limits: ReadLimits = DEFAULT_READ_LIMITS): PackRead[] {
  const byPack = new Map<PackId, PlannedRecord[]>();
  const seen = new Set<ChunkId>();
  for (const record of records) {
    if (seen.has(record.id)) continue;
    seen.add(record.id);
    const list = byPack.get(record.location.pack);
    if (list) list.push(record);
    else byPack.set(record.location.pack, [record]);
  }
  const reads: PackRead[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.location.offset - b.location.offset);
    let current: PackRead | undefined;
    for (const record of list) {
      const { offset, length } = record.location;
      if (
        current &&
        offset - (current.offset + current.length) <= limits.maxGap &&
        offset + length - current.offset <= limits.maxLength
      ) {
        current.length = Math.max(current.length, offset + length - current.offset);
        current.records.push(record);
      } else {
        current = { pack, offset, length, records: [record] };
        reads.push(current);
      }
    }
  }
  return reads;
}

export interface ChunkReaderOptions {
  limits?: ReadLimits;
  /** Ranged reads in flight at once. */
  parallelReads?: number;
  /** Decompressed bytes of one read decoded ahead of the chunk being delivered. */
  decodeAhead?: number;
  /** Decoded chunks kept for reuse by later reads (a chunk many files share, across batches). */
  cacheBytes?: number;
}

/**
 * Reads chunks: one ranged read per run of needed records in a pack, then decrypt and decompress per record.
 *
 * Memory held by `read` is bounded by parallelReads × (maxLength encrypted + decodeAhead decoded) plus the cache,
 * plus whatever `deliver` keeps (defaults: object stores 2 × (32 + 4) MiB + 8 MiB = 80 MiB; file storage
 * 1 × (4 + 4) MiB + 8 MiB = 16 MiB; a single record larger than maxLength is read alone).
 */
export class ChunkReader {
  private readonly limits: ReadLimits;
  private readonly parallelReads: number;
  private readonly decodeAhead: number;
  private readonly cache: DecodedCache;

  constructor(
    private readonly storage: Storage,
    private readonly key: Buffer,
    private readonly index: ChunkIndex,
    options: ChunkReaderOptions = {},
  ) {
    const local = isLocal(storage);
    this.limits = options.limits ?? (local ? LOCAL_READ_LIMITS : DEFAULT_READ_LIMITS);
    this.parallelReads = options.parallelReads ?? (local ? 1 : 2);
    this.decodeAhead = options.decodeAhead ?? 4 * MiB;
    this.cache = new DecodedCache(options.cacheBytes ?? 8 * MiB);
  }

  /** Where a chunk is; a chunk in no index is damage (Corrupt). */
  locate(id: ChunkId): ChunkLocation {
    const location = this.index.get(id);
    if (!location)
      throw new TidemarkError(
        'Corrupt',
        `chunk ${id.slice(0, 12)} is referenced but in no index (\`tidemark repo check\` says what is damaged)`,
      );
    return location;
  }

  /** The decoded length of a chunk the index lists, else undefined. */
  lengthOf(id: ChunkId): number | undefined {
    return this.index.get(id)?.rawLength;
  }

  /** Reads, decrypts, decompresses one chunk (a fresh buffer, never shared). Damage fails with Corrupt naming chunk and pack. */
  async get(id: ChunkId): Promise<Buffer> {
    const location = this.locate(id);
    const record = { id, location };
    const bytes = await this.fetch({
      pack: location.pack,
      offset: location.offset,
      length: location.length,
      records: [record],
    });
    return this.decode(record, bytes);
  }

  /**
   * Reads every chunk named (each once, however often named) and calls `deliver` once per chunk, in no particular
   * order, waiting for it before delivering more from the same read. Delivered buffers may be shared with later
   * deliveries (the cache): `deliver` must not modify them. Fails with the first failure, once reads in flight end.
   * `cache: false`: what is read is not kept for later reads (chunks read once, as a backup's parent trees).
   */
  async read(
    ids: Iterable<ChunkId>,
    deliver: (id: ChunkId, data: Buffer) => Promise<void>,
    { cache = true }: { cache?: boolean } = {},
  ): Promise<void> {
    const records: PlannedRecord[] = [];
    for (const id of ids) {
      const cached = this.cache.get(id);
      if (cached) await deliver(id, cached);
      else records.push({ id, location: this.locate(id) });
    }
    const reads = planReads(records, this.limits);
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (!failure && next < reads.length) {
        const read = reads[next++] as PackRead;
        await this.readOne(read, deliver, cache).catch((error: unknown) => {
          failure ??= { error };
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.parallelReads, reads.length) }, worker));
    if (failure) throw failure.error;
  }

  /** The chunks' contents in the order named, read `windowBytes` (decoded) at a time with the next window read ahead. */
  async *inOrder(ids: readonly ChunkId[], windowBytes = 16 * MiB): AsyncGenerator<Buffer> {
    const windows: ChunkId[][] = [];
    let window: ChunkId[] = [];
    let bytes = 0;
    for (const id of ids) {
      window.push(id);
      bytes += this.locate(id).rawLength;
      if (bytes >= windowBytes) {
        windows.push(window);
        window = [];
        bytes = 0;
      }
    }
    if (window.length > 0) windows.push(window);
    const collect = async (chunkIds: ChunkId[]) => {
      const found = new Map<ChunkId, Buffer>();
      await this.read(chunkIds, async (id, data) => {
        found.set(id, data);
      });
      return found;
    };
    const ahead = new InOrder<Map<ChunkId, Buffer>>();
    try {
      for (let i = 0; i < windows.length; i++) {
        if (i === 0) ahead.add(collect(windows[0] as ChunkId[]));
        if (i + 1 < windows.length) ahead.add(collect(windows[i + 1] as ChunkId[]));
        const found = (await ahead.next()) as Map<ChunkId, Buffer>;
        for (const id of windows[i] as ChunkId[]) yield found.get(id) as Buffer;
      }
    } finally {
      await ahead.drain();
    }
  }

  private async readOne(
    read: PackRead,
    deliver: (id: ChunkId, data: Buffer) => Promise<void>,
    cache: boolean,
  ): Promise<void> {
    const bytes = await this.fetch(read);
    const decoding = new InOrder<Buffer>();
    let started = 0;
    let delivered = 0;
    let decodingBytes = 0;
    try {
      while (delivered < read.records.length) {
        while (started < read.records.length && (started === delivered || decodingBytes < this.decodeAhead)) {
          const record = read.records[started++] as PlannedRecord;
          decodingBytes += record.location.rawLength;
          const at = record.location.offset - read.offset;
          decoding.add(this.decode(record, bytes.subarray(at, at + record.location.length)));
        }
        const record = read.records[delivered++] as PlannedRecord;
        const data = (await decoding.next()) as Buffer;
        decodingBytes -= record.location.rawLength;
        if (cache) this.cache.add(record.id, data);
        await deliver(record.id, data);
      }
    } catch (error) {
      await decoding.drain();
      throw error;
    }
  }

  /** The read's range of its pack. The index says the records are there: a pack too short for them is damaged. */
  private async fetch(read: PackRead): Promise<Buffer> {
    const range = { offset: read.offset, length: read.length };
    return this.storage.get(blobNames.pack(read.pack), range).catch((error: unknown) => {
      const first = (read.records[0] as PlannedRecord).id.slice(0, 12);
      const what = read.records.length > 1 ? `chunks ${first} and ${read.records.length - 1} more` : `chunk ${first}`;
      throw withContext(
        `reading ${what} from pack ${read.pack}`,
        isCode(error, 'InvalidArgument')
          ? new TidemarkError('Corrupt', (error as Error).message, { cause: error })
          : error,
      );
    });
  }

  private async decode({ id, location }: PlannedRecord, record: Buffer): Promise<Buffer> {
    try {
      return await decodeRecord(this.key, id, location, record, location.pack);
    } catch (error) {
      throw withContext(`reading chunk ${id.slice(0, 12)} from pack ${location.pack}`, error);
    }
  }
}

/** Decoded chunks, least recently used dropped first; chunks over an eighth of the budget are not kept. */
class DecodedCache {
  private readonly chunks = new Map<ChunkId, Buffer>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(id: ChunkId): Buffer | undefined {
    const data = this.chunks.get(id);
    if (data) {
      this.chunks.delete(id);
      this.chunks.set(id, data);
    }
    return data;
  }

  add(id: ChunkId, data: Buffer): void {
    if (data.length > this.budget / 8 || this.chunks.has(id)) return;
    this.chunks.set(id, data);
    this.bytes += data.length;
    for (const [oldest, old] of this.chunks) {
      if (this.bytes <= this.budget) break;
      this.chunks.delete(oldest);
      this.bytes -= old.length;
    }
  }
}
