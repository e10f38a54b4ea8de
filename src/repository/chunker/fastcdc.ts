/**
 * Content-defined chunking: FastCDC with normalised chunking (Xia et al., "FastCDC: a Fast and
 * Efficient Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016, and the 2020
 * TPDS version), over a seeded gear table (gear.ts).
 *
 * For each chunk, starting at its first byte:
 * - the first `min` bytes are skipped without hashing (cut-point skipping);
 * - from there the gear hash rolls over every byte: h = (h << 1) + gear[byte] (mod 2^32), h = 0 at
 *   the chunk start; bit k of h depends on the last k+1 bytes only, so the masks take high bits;
 * - while the chunk is shorter than `avg` (the normal size) a cut is made after the byte where
 *   (h & maskS) == 0, maskS having log2(avg)+2 bits (harder to hit); from `avg` on, maskL with
 *   log2(avg)-2 bits (easier) — normalised chunking level 2, which pulls sizes towards `avg`;
 * - a chunk that reaches `max` bytes is cut there.
 * Masks are contiguous runs of bits ending at bit 30 (never bit 31), so the loop (gear-scan.wat) can roll two bytes
 * per step with a pre-shifted table (the 2020 paper's "rolling two bytes") and still give exactly
 * the boundaries of the one-byte definition above.
 *
 * Boundaries depend only on the content and the seed, never on how the input was split into buffers.
 * Part of the repository format: changing anything above changes boundaries (dedup against older data
 * is lost; existing data stays readable).
 */
import { TidemarkError } from '../../errors.ts';
import { gearTable } from './gear.ts';
import { GearScan, type GearTables } from './gear-scan.ts';

export interface ChunkerOptions {
  /** 32 bytes, from the repository's keys (see gear.ts). */
  seed: Buffer;
  /** Smallest chunk (except the last one of a stream), bytes. Default 256 KiB. */
  min?: number;
  /** Normal (average) chunk size, a power of two. Default 1 MiB. */
  avg?: number;
  /** Largest chunk, bytes. Default 4 MiB. */
  max?: number;
}

export const DEFAULT_MIN = 256 * 1024;
export const DEFAULT_AVG = 1024 * 1024;
export const DEFAULT_MAX = 4 * 1024 * 1024;

const AVG_BITS_MIN = 8; // 256 bytes
const AVG_BITS_MAX = 28; // 256 MiB
const MIN_FLOOR = 64;
const MAX_CEILING = 1024 * 1024 * 1024;

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

function invalid(parameter: string, message: string): TidemarkError {
  return new TidemarkError('InvalidArgument', `chunker parameter ${parameter}: ${message}`);
}

/** Checks min < avg < max, avg a power of two, and sane ranges; throws InvalidArgument naming the parameter. */
export function validateParams(options: Partial<ChunkerParams>): ChunkerParams {
  const min = options.min ?? DEFAULT_MIN;
  const avg = options.avg ?? DEFAULT_AVG;
  const max = options.max ?? DEFAULT_MAX;
  for (const [name, value] of [
    ['min', min],
    ['avg', avg],
    ['max', max],
  ] as const)
    if (!Number.isSafeInteger(value) || value <= 0) throw invalid(name, `must be a positive integer, got ${value}`);
  if (avg < 2 ** AVG_BITS_MIN || avg > 2 ** AVG_BITS_MAX || (avg & (avg - 1)) !== 0)
    throw invalid('avg', `must be a power of two from ${2 ** AVG_BITS_MIN} to ${2 ** AVG_BITS_MAX}, got ${avg}`);
  if (min < MIN_FLOOR) throw invalid('min', `must be at least ${MIN_FLOOR}, got ${min}`);
  if (min >= avg) throw invalid('min', `must be less than avg (${avg}), got ${min}`);
  if (max <= avg) throw invalid('max', `must be greater than avg (${avg}), got ${max}`);
  if (max > MAX_CEILING) throw invalid('max', `must be at most ${MAX_CEILING}, got ${max}`);
  return { min, avg, max };
}

/** `bits` one-bits ending at bit 30. */
function highMask(bits: number): number {
  return ((2 ** bits - 1) * 2 ** (31 - bits)) | 0;
}

/** Tables of the seeds in use, by seed (hex); a process uses one or a few repositories' seeds. */
const gearTablesBySeed = new Map<string, GearTables>();
const GEAR_TABLES_KEPT = 16;

/**
 * The gear tables of `seed`, derived once per seed: a chunker is made per file, and deriving them
 * (32 HMACs, ~140 µs) cost more than chunking a small file. Read-only, shared by every chunker.
 */
function gearTablesOf(seed: Buffer): GearTables {
  const key = Buffer.isBuffer(seed) ? seed.toString('hex') : '';
  const known = gearTablesBySeed.get(key);
  if (known) return known;
  const gear = new Int32Array(gearTable(seed).buffer);
  const tables = { gear, gearShifted: gear.map((g) => g << 1) };
  if (gearTablesBySeed.size >= GEAR_TABLES_KEPT)
    gearTablesBySeed.delete(gearTablesBySeed.keys().next().value as string);
  gearTablesBySeed.set(key, tables);
  return tables;
}

/** Leftovers shorter than this are copied into a staging buffer of STAGING_SIZE bytes. */
const SMALL = 16 * 1024;
const STAGING_SIZE = 64 * 1024;

/**
 * Synchronous core: push buffers, get completed chunks back, `finish()` for the rest. Chunks are
 * Buffers that may share memory with the pushed input (a chunk inside one input buffer is a view of
 * it; one spanning buffers is a copy), so input must not be modified after it was pushed.
 * Holds at most `max` bytes of earlier input besides the buffer being pushed.
 */
export class Chunker {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
  /** The rolling hash (gear-scan.ts). */
  private readonly rolling: GearScan;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Slices of the current chunk from earlier pushes, and their total length (staged bytes included). */
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  /** Small leftovers are copied here instead of kept as views, so tiny input buffers cost no per-slice overhead. */
  private staging: Buffer | undefined;
  private stagingUsed = 0;

  constructor(options: ChunkerOptions) {
    const { min, avg, max } = validateParams(options);
    this.min = min;
    this.avg = avg;
    this.max = max;
    this.rolling = new GearScan(gearTablesOf(options.seed));
    const bits = Math.log2(avg);
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** Feeds the next piece of input; returns the chunks it completed, in order (often none). */
  push(data: Uint8Array): Buffer[] {
    return this.pushParts(data).map(join);
  }

  /** The last chunk (shorter than min, possibly), or undefined when the input ended on a boundary. */
  finish(): Buffer | undefined {
    const last = this.finishParts();
    return last && join(last);
  }

  /**
   * `push`, each chunk given as the pieces of input it spans (views, or staged copies of small
   * leftovers) instead of one buffer: no concatenation when the consumer copies them anyway.
   */
  pushParts(data: Uint8Array): Uint8Array[][] {
    const length = data.length;
    const out: Uint8Array[][] = [];
    if (length === 0) return out;
    let start = 0; // where the current chunk's part in `data` begins
    let i = 0; // next byte to look at
    for (;;) {
      // Bytes of the current chunk seen so far, including pending ones.
      let size = this.pendingLength + (i - start);
      let cut = -1;
      if (size < this.min) {
        const skip = Math.min(this.min - size, length - i);
        i += skip;
        size += skip;
        if (size < this.min) break;
      }
      if (size < this.avg) {
        const end = Math.min(length, i + (this.avg - size));
        cut = this.rolling.scan(data, i, end, this.maskS);
        if (cut < 0) {
          size += end - i;
          i = end;
          if (size < this.avg) break;
        }
      }
      if (cut < 0) {
        const end = Math.min(length, i + (this.max - size));
        cut = this.rolling.scan(data, i, end, this.maskL);
        if (cut < 0) {
          size += end - i;
          i = end;
          if (size < this.max) break;
          cut = i;
        }
      }
      out.push(this.take(data, start, cut));
      start = i = cut;
      this.rolling.hash = 0;
    }
    if (start < length) this.keep(data.subarray(start));
    return out;
  }

  /** `finish`, as parts (see pushParts). */
  finishParts(): Uint8Array[] | undefined {
    if (this.pendingLength === 0) return undefined;
    const last = this.take(new Uint8Array(0), 0, 0);
    this.rolling.hash = 0;
    return last;
  }

  /** Remembers the unfinished chunk's part of the pushed input: a view, or a copy when small. */
  private keep(rest: Uint8Array): void {
    this.pendingLength += rest.length;
    if (rest.length >= SMALL) {
      this.flushStaging();
      this.pending.push(rest);
      return;
    }
    if (this.staging && this.stagingUsed + rest.length > this.staging.length) this.flushStaging();
    if (!this.staging) this.staging = Buffer.allocUnsafe(STAGING_SIZE);
    this.staging.set(rest, this.stagingUsed);
    this.stagingUsed += rest.length;
  }

  private flushStaging(): void {
    if (this.staging && this.stagingUsed > 0) this.pending.push(this.staging.subarray(0, this.stagingUsed));
    this.staging = undefined;
    this.stagingUsed = 0;
  }

  /** The current chunk: the pending slices plus data[start, end). */
  private take(data: Uint8Array, start: number, end: number): Uint8Array[] {
    this.flushStaging();
    if (end > start) this.pending.push(data.subarray(start, end));
    const parts = this.pending;
    this.pending = [];
    this.pendingLength = 0;
    return parts;
  }
}

function join(parts: Uint8Array[]): Buffer {
  const [only] = parts;
  return parts.length === 1 && only ? Buffer.from(only.buffer, only.byteOffset, only.length) : Buffer.concat(parts);
}

/**
 * Splits a stream into content-defined chunks, yielded in order; their concatenation is the input.
 * Memory: at most ~max bytes of earlier input plus the current input buffer.
 */
export function chunkStream(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  options: ChunkerOptions,
): AsyncGenerator<Buffer> {
  // Built here, so invalid options throw at the call rather than at the first read.
  return run(new Chunker(options), source, join);
}

/**
 * `chunkStream` yielding each chunk as the pieces of input it spans (see Chunker.pushParts), for a
 * consumer that copies them (ChunkStore.put copies a chunk into a worker's shared memory).
 */
export function chunkPartsStream(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  options: ChunkerOptions,
): AsyncGenerator<Uint8Array[]> {
  return run(new Chunker(options), source, (parts) => parts);
}

async function* run<T>(
  chunker: Chunker,
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  emit: (parts: Uint8Array[]) => T,
): AsyncGenerator<T> {
  for await (const data of source) for (const chunk of chunker.pushParts(data)) yield emit(chunk);
  const last = chunker.finishParts();
  if (last) yield emit(last);
}
