import { isCode, TidemarkError, withContext } from '../errors.ts';
import { decompress } from './compression.ts';
import { blobNames, type ChunkId, type PackId } from './format.ts';
import { InOrder } from './in-order.ts';
import type { ChunkIndex, ChunkLocation } from './index.ts';
import { openRecord } from './pack.ts';
import { type ChunkPipeline, sharedPipeline } from './pipeline/pool.ts';
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
  /** Where records of a read are opened; default the process's (pipeline/pool.ts). */
  pipeline?: ChunkPipeline;
}

/**
 * Reads chunks: one ranged read per run of needed records in a pack, then decrypt and decompress per record.
 *
 * Records are opened (decrypted, decompressed) on the pipeline's worker threads, a window of them per job. Memory
 * held by `read` is bounded by parallelReads × (maxLength encrypted + the two windows in flight: their encrypted
 * copies and decodeAhead decoded) plus the cache, plus whatever `deliver` keeps (a delivered chunk keeps its
 * window alive; defaults: object stores 2 × (32 + 4 + 4) MiB + 8 MiB = 88 MiB; file storage 1 × (4 + 4 + 4) MiB +
 * 8 MiB = 20 MiB; a single record larger than maxLength is read alone, and one larger than a window is one).
 */
export class ChunkReader {
  private readonly limits: ReadLimits;
  private readonly parallelReads: number;
  private readonly decodeAhead: number;
  private readonly cache: DecodedCache;
  private readonly pipeline: ChunkPipeline;
  /** The key in a buffer of its own: a view of a larger one (Node's pool) is posted to a worker whole. */
  private readonly workerKey: Uint8Array;

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
    this.pipeline = options.pipeline ?? sharedPipeline();
    this.workerKey = new Uint8Array(key);
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
   */
  async read(ids: Iterable<ChunkId>, deliver: (id: ChunkId, data: Buffer) => Promise<void>): Promise<void> {
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
        await this.readOne(read, deliver).catch((error: unknown) => {
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

  /**
   * Fetches a read's range and has its records opened (decrypted, decompressed) on the pipeline workers, in
   * windows of up to half of `decodeAhead` decoded bytes, two at a time, delivered in order.
   */
  private async readOne(read: PackRead, deliver: (id: ChunkId, data: Buffer) => Promise<void>): Promise<void> {
    const bytes = await this.fetch(read);
    const windows = openWindows(read.records, this.decodeAhead / 2);
    const opening = new InOrder<Buffer[]>();
    let started = 0;
    try {
      for (const window of windows) {
        while (started < windows.length && opening.size < 2)
          opening.add(this.openWindow(read, bytes, windows[started++] as PlannedRecord[]));
        const chunks = (await opening.next()) as Buffer[];
        for (const [i, record] of window.entries()) {
          const data = chunks[i] as Buffer;
          this.cache.add(record.id, data);
          await deliver(record.id, data);
        }
      }
    } catch (error) {
      await opening.drain();
      throw error;
    }
  }

  /** Opens the records of one window on a pipeline worker; the chunks are views of one buffer. */
  private async openWindow(read: PackRead, bytes: Buffer, records: PlannedRecord[]): Promise<Buffer[]> {
    const first = (records[0] as PlannedRecord).location.offset - read.offset;
    const last = records.at(-1)?.location as ChunkLocation;
    // A copy of its own: it is transferred to the worker.
    const input = new Uint8Array(bytes.subarray(first, last.offset - read.offset + last.length)).buffer;
    const { output, ends } = await this.pipeline.openRecords(this.workerKey, input, {
      pack: read.pack,
      ids: records.map((r) => r.id),
      starts: records.map((r) => r.location.offset - read.offset - first),
      lengths: records.map((r) => r.location.length),
      codecs: records.map((r) => r.location.codec),
      rawLengths: records.map((r) => r.location.rawLength),
    });
    return ends.map((end, i) => {
      const start = i === 0 ? 0 : (ends[i - 1] as number);
      return Buffer.from(output, start, end - start);
    });
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
      const compressed = openRecord(this.key, id, record, location.pack);
      return await decompress(location.codec, compressed, location.rawLength);
    } catch (error) {
      throw withContext(`reading chunk ${id.slice(0, 12)} from pack ${location.pack}`, error);
    }
  }
}

/**
 * Records in windows of up to `bytes` decoded bytes (at least one record each), in order: one pipeline job each.
 */
export function openWindows(records: readonly PlannedRecord[], bytes: number): PlannedRecord[][] {
  const windows: PlannedRecord[][] = [];
  let window: PlannedRecord[] = [];
  let decoded = 0;
  for (const record of records) {
    if (window.length > 0 && decoded + record.location.rawLength > bytes) {
      windows.push(window);
      window = [];
      decoded = 0;
    }
    window.push(record);
    decoded += record.location.rawLength;
  }
  if (window.length > 0) windows.push(window);
  return windows;
}

/** Chunks up to this size are copied into the cache (a buffer of their own) rather than kept as views. */
const CACHE_COPY_BELOW = 64 * 1024;

/**
 * Decoded chunks, least recently used dropped first; chunks over an eighth of the budget are not kept. A chunk
 * opened on a worker is a view of its window's buffer: a small one is kept as a copy, a larger one counts the
 * whole buffer it keeps alive, so the budget bounds the memory held.
 */
class DecodedCache {
  private readonly chunks = new Map<ChunkId, { data: Buffer; cost: number }>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(id: ChunkId): Buffer | undefined {
    const kept = this.chunks.get(id);
    if (kept) {
      this.chunks.delete(id);
      this.chunks.set(id, kept);
    }
    return kept?.data;
  }

  add(id: ChunkId, data: Buffer): void {
    if (data.length > this.budget / 8 || this.chunks.has(id)) return;
    const whole = data.byteOffset === 0 && data.length === data.buffer.byteLength;
    const kept = whole || data.length >= CACHE_COPY_BELOW ? data : copyOf(data);
    const cost = kept.buffer.byteLength;
    if (cost > this.budget / 8) return;
    this.chunks.set(id, { data: kept, cost });
    this.bytes += cost;
    for (const [oldest, old] of this.chunks) {
      if (this.bytes <= this.budget) break;
      this.chunks.delete(oldest);
      this.bytes -= old.cost;
    }
  }
}

/** A copy in a buffer of its own (not a slice of Node's shared pool). */
function copyOf(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}
