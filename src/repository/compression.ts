/**
 * Chunk compression. The repository stores a one-byte codec id next to each chunk (pack entry):
 *
 *   id | codec | stored bytes                                   | written by
 *   ---+-------+-------------------------------------------------+------------------------------------
 *    0 | none  | the chunk as is                                 | any runtime, when compression saves
 *      |       |                                                 | less than 1/16 (random, media, .gz)
 *    1 | zstd  | one zstd frame (level 1 by default, no frame    | every writer since Node 26
 *      |       | checksum) || crc32(frame) as uint32 LE          |
 *    2 | brotli| a brotli stream (quality 1)                     | writers on Node 20 (no zstd in
 *      |       | || crc32(stream) as uint32 LE                   | node:zlib); read, no longer written
 *  3.. | —     | reserved; readers refuse unknown ids (Unsupported) |
 *
 * Every codec ever written is read, with node:zlib.
 * The CRC-32 (IEEE, zlib's) of the compressed stream is checked before decoding, so damage is an
 * error on every path, also where the codec has no check of its own (brotli; zstd frames carry no
 * checksum), and a decoder never sees damaged input. It costs a fraction of a CRC over the raw
 * chunk. Above this layer AES-GCM authenticates the stored bytes, so a failing CRC means a bug or a
 * wrong codec id. The raw length (from the index) is checked as well.
 *
 * Compression is synchronous: the repository pipeline (pipeline/) runs it on worker threads, one chunk
 * per worker at a time. Decompression of chunks up to SYNC_DECODE_MAX bytes (raw) is synchronous too:
 * for them a trip through libuv's thread pool costs about three times the decoding, and zstd ones go
 * through one context kept per thread (ZstdDecoder); larger ones run on the thread pool (async
 * node:zlib) so the main thread keeps going.
 */
import * as zlib from 'node:zlib';
import { TidemarkError } from '../errors.ts';

export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;
export const CODEC_BROTLI = 2;
export type Codec = typeof CODEC_NONE | typeof CODEC_ZSTD | typeof CODEC_BROTLI;

export const CODEC_NAMES: Readonly<Record<Codec, string>> = { 0: 'none', 1: 'zstd', 2: 'brotli' };

/** Default levels: fast ones, since on two cores compression competes with chunking, hashing and sealing. */
export const DEFAULT_ZSTD_LEVEL = 1;

/**
 * Stored uncompressed unless compression saves at least 1/16 of the size: below that the CPU spent
 * on every restore buys almost nothing.
 */
export const MIN_SAVING = 1 / 16;
/** Chunks this short are stored as they are. */
const MIN_COMPRESS_LENGTH = 64;
/**
 * Chunks of at least PROBE_FROM bytes are probed first: three slices of PROBE_SLICE bytes are
 * compressed, and when they save less than PROBE_MIN_SAVING the chunk is stored as is without
 * compressing the whole (already compressed media, archives: ~15x less CPU for them).
 */
const PROBE_FROM = 256 * 1024;
const PROBE_SLICE = 16 * 1024;
const PROBE_MIN_SAVING = 1 / 32;
/** Without an expected length, decompression stops (as Corrupt) past this many bytes. */
const DEFAULT_MAX_OUTPUT = 1024 * 1024 * 1024;
/** Chunks of a known raw length up to this are decoded on the calling thread (see above). */
const SYNC_DECODE_MAX = 64 * 1024;
const CRC_LENGTH = 4;

type ZlibCallback = (error: Error | null, result: Buffer) => void;

export interface CompressOptions {
  /** zstd level (1..19); DEFAULT_ZSTD_LEVEL when absent. */
  level?: number;
}

/**
 * Compresses a chunk with `codec` (default zstd), or returns it as is with codec 0 when that saves
 * less than MIN_SAVING. Brotli (codec 2) is read but no longer written: naming it is Unsupported.
 */
export async function compress(
  data: Buffer,
  codec: Codec = CODEC_ZSTD,
  options: CompressOptions = {},
): Promise<{ codec: Codec; data: Buffer }> {
  const compressed = compressParts(data, codec, options);
  // Concatenated: a copy, as the parts are views of a buffer the next compression overwrites.
  return { codec: compressed.codec, data: compressed.codec === CODEC_NONE ? data : Buffer.concat(compressed.parts) };
}

/**
 * `compress`, synchronous (it runs on a pipeline worker or inline for small chunks), giving the stored
 * bytes in parts (the stream, then its CRC) so they can be sealed without concatenating them. The
 * stream is a view of a buffer the next compression on this thread overwrites: use it before that.
 */
export function compressParts(
  data: Uint8Array,
  codec: Codec = CODEC_ZSTD,
  options: CompressOptions = {},
): { codec: Codec; parts: readonly Uint8Array[] } {
  const stored = { codec: CODEC_NONE, parts: [data] } as const;
  if (codec === CODEC_NONE) return stored;
  if (codec !== CODEC_ZSTD)
    throw new TidemarkError('Unsupported', `cannot compress with codec ${codec} (this version writes 0 and 1)`);
  if (data.length < MIN_COMPRESS_LENGTH) return stored;
  if (data.length >= PROBE_FROM) {
    const sample = Buffer.concat([1, 2, 3].map((q) => slice(data, (data.length * q) / 4)));
    const probed = encode(sample, options.level);
    if (probed.length > sample.length * (1 - PROBE_MIN_SAVING)) return stored;
  }
  const encoded = encode(data, options.level);
  if (encoded.length + CRC_LENGTH > data.length * (1 - MIN_SAVING)) return stored;
  const crc = Buffer.allocUnsafe(CRC_LENGTH);
  crc.writeUInt32LE(crc32(encoded));
  return { codec, parts: [encoded, crc] };
}

/**
 * Reverses `compress`. Unknown codec ids are Unsupported; damaged input (CRC mismatch, codec error,
 * wrong length) is Corrupt, never wrong bytes. Pass `expectedLength` (the chunk's raw length from
 * the index): it is checked, it bounds the memory a bad stream can claim, and it is the only thing
 * that catches a stream a buggy writer cut short before its CRC was taken (node:zlib's zstd decoder
 * accepts an incomplete frame silently).
 */
export async function decompress(codec: number, data: Buffer, expectedLength?: number): Promise<Buffer> {
  if (codec === CODEC_NONE) {
    if (expectedLength !== undefined && data.length !== expectedLength)
      throw corrupt(`uncompressed chunk is ${data.length} bytes, expected ${expectedLength}`);
    return data;
  }
  if (codec !== CODEC_ZSTD && codec !== CODEC_BROTLI)
    throw new TidemarkError('Unsupported', `unknown compression codec ${codec} (this version reads 0, 1, 2)`);
  const name = CODEC_NAMES[codec];
  // An empty stream is never written (empty chunks get codec 0), and node:zlib's zstd decodes it to nothing.
  if (data.length <= CRC_LENGTH) throw corrupt(`${name} data of ${data.length} bytes is too short`);
  const stream = data.subarray(0, data.length - CRC_LENGTH);
  if (crc32(stream) !== data.readUInt32LE(stream.length)) throw corrupt(`${name} data fails its CRC-32 check`);
  let out: Buffer;
  try {
    out = await decode(codec, stream, expectedLength);
  } catch (error) {
    throw corrupt(`${name} data does not decompress: ${error instanceof Error ? error.message : error}`, error);
  }
  if (expectedLength !== undefined && out.length !== expectedLength)
    throw corrupt(`${name} data gives ${out.length} bytes, expected ${expectedLength}`);
  return out;
}

function corrupt(message: string, cause?: unknown): TidemarkError {
  return new TidemarkError('Corrupt', message, { cause });
}

function slice(data: Uint8Array, center: number): Uint8Array {
  const start = Math.max(0, Math.min(data.length - PROBE_SLICE, Math.floor(center - PROBE_SLICE / 2)));
  return data.subarray(start, start + PROBE_SLICE);
}

/** The zstd frame of `data`: a view of a buffer the next call on this thread overwrites. */
function encode(data: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Buffer {
  let encoder = encoders.get(level);
  if (!encoder) {
    encoder = new ZstdEncoder(level);
    encoders.set(level, encoder);
  }
  return encoder.encode(data);
}

/** What node:zlib's own zstd functions drive: the native handle and the [availOut, availIn] it reports. */
interface ZstdInternals {
  _handle: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOff: number,
      inLen: number,
      out: Uint8Array,
      outOff: number,
      outLen: number,
    ): void;
    reset(): void;
    onerror: (message: string) => void;
  };
  _writeState: Uint32Array;
}

/**
 * The native zstd context of a node:zlib stream, driven directly the way node:zlib's processChunkSync
 * does, or undefined where the internals are not the ones driven here (another Node). Its errors are
 * taken as they happen (node:zlib would destroy the stream, closing the context): `write` throws them,
 * and the next use must `reset` it.
 */
class NativeZstd {
  availOut = 0;
  availIn = 0;
  private failure: string | undefined;

  private constructor(private readonly internals: ZstdInternals) {
    internals._handle.onerror = (message) => {
      this.failure = message;
    };
  }

  static of(stream: zlib.ZstdCompress | zlib.ZstdDecompress): NativeZstd | undefined {
    const internals = stream as unknown as Partial<ZstdInternals>;
    return typeof internals._handle?.writeSync === 'function' &&
      typeof internals._handle.reset === 'function' &&
      internals._writeState instanceof Uint32Array
      ? new NativeZstd(internals as ZstdInternals)
      : undefined;
  }

  /** One `writeSync` of the native handle: flush, input, its offset and length, output, its offset and room. */
  write(...args: Parameters<ZstdInternals['_handle']['writeSync']>) {
    this.internals._handle.writeSync(...args);
    const failure = this.failure;
    if (failure !== undefined) {
      this.failure = undefined;
      throw new Error(failure);
    }
    [this.availOut = 0, this.availIn = 0] = this.internals._writeState;
  }

  reset(): void {
    this.internals._handle.reset();
  }
}

/**
 * A zstd compressor kept for the thread's lifetime (one per level). Making one per chunk (a stream
 * object and a zstd context, ~35 µs) cost twice the compression of a small chunk. It drives the
 * native context (NativeZstd) one finished frame per call, which leaves it ready for the next frame:
 * the frames are byte for byte those of zstdCompressSync with the same parameters (compression.test.ts).
 */
class ZstdEncoder {
  private readonly native: NativeZstd | undefined;
  private readonly params: Record<number, number>;
  /** Output, at least zstd's bound of the largest chunk so far (input + 1/256 + 64), reused. */
  private out = Buffer.allocUnsafe(64 * 1024);

  constructor(level: number) {
    this.params = { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 0 };
    this.native = NativeZstd.of(zlib.createZstdCompress({ params: this.params }));
  }

  encode(data: Uint8Array): Buffer {
    const native = this.native;
    if (!native) return zlib.zstdCompressSync(data, { params: this.params });
    const bound = data.length + (data.length >> 8) + 64;
    // zstd picks its strategy from the room of the first call (all of the bound, or not): the room is
    // the output chunk size zstdCompressSync was always given, so the frames stay what they were.
    const step = Math.min(bound, MAX_OUTPUT_STEP);
    if (this.out.length < bound) this.out = Buffer.allocUnsafe(bound);
    let read = 0;
    let written = 0;
    try {
      for (;;) {
        const room = Math.min(step, this.out.length - written);
        native.write(zlib.constants.ZSTD_e_end, data, read, data.length - read, this.out, written, room);
        read = data.length - native.availIn;
        written += room - native.availOut;
        if (native.availOut > 0 || written >= this.out.length) break;
      }
      if (read < data.length || written >= this.out.length) throw new Error('frame not finished within its bound');
    } catch (error) {
      native.reset();
      throw new TidemarkError('Internal', `zstd compression of ${data.length} bytes: ${(error as Error).message}`);
    }
    return this.out.subarray(0, written);
  }
}

/**
 * A zstd decompressor kept for the thread's lifetime, for chunks decoded on it (up to SYNC_DECODE_MAX):
 * making one per chunk (zstdDecompressSync: a stream object and a zstd context) cost twice the
 * decoding of a small chunk. It decodes into a new buffer of exactly the expected length (the caller
 * keeps it), and a frame must fill it exactly: one ending early or running long, or bytes after it,
 * are errors. The context is reset before each frame, so one left unfinished by damaged input never
 * runs into the next.
 */
class ZstdDecoder {
  private readonly native = NativeZstd.of(zlib.createZstdDecompress());
  /** Room for one byte more than expected: a frame that fills it runs long. */
  private readonly beyond = Buffer.allocUnsafe(1);

  decode(frame: Uint8Array, length: number, options: zlib.ZstdOptions): Buffer {
    const native = this.native;
    if (!native) return zlib.zstdDecompressSync(frame, options);
    const out = Buffer.allocUnsafe(length);
    native.reset();
    native.write(zlib.constants.ZSTD_e_end, frame, 0, frame.length, out, 0, length);
    if (native.availOut > 0) throw new Error(`the frame gives ${length - native.availOut} bytes, expected ${length}`);
    const consumed = frame.length - native.availIn;
    native.write(zlib.constants.ZSTD_e_end, frame, consumed, native.availIn, this.beyond, 0, 1);
    if (native.availOut === 0) throw new Error(`the frame gives more than the expected ${length} bytes`);
    if (native.availIn > 0) throw new Error(`${native.availIn} bytes follow the frame`);
    return out;
  }
}

/** Output chunk size zstdCompressSync was given for chunks over ~4 MiB (see ZstdEncoder.encode). */
const MAX_OUTPUT_STEP = 4 * 1024 * 1024;
const encoders = new Map<number, ZstdEncoder>();
const decoder = new ZstdDecoder();

function decode(
  codec: typeof CODEC_ZSTD | typeof CODEC_BROTLI,
  data: Buffer,
  expectedLength: number | undefined,
): Buffer | Promise<Buffer> {
  const limit = expectedLength ?? DEFAULT_MAX_OUTPUT;
  // With the length known, one output buffer of that size (no concatenation of 16 KiB pieces), and a byte more:
  // node:zlib allocates another whole chunkSize buffer whenever the output fills the one it has.
  const chunkSize = Math.max(64, expectedLength === undefined ? 1024 * 1024 : expectedLength + 1);
  const options = { chunkSize, maxOutputLength: Math.max(1, limit) };
  if (expectedLength !== undefined && expectedLength <= SYNC_DECODE_MAX)
    return codec === CODEC_ZSTD
      ? decoder.decode(data, expectedLength, options)
      : zlib.brotliDecompressSync(data, options);
  return new Promise<Buffer>((resolve, reject) => {
    const done: ZlibCallback = (error, output) => (error ? reject(error) : resolve(output));
    if (codec === CODEC_ZSTD) zlib.zstdDecompress(data, options, done);
    else zlib.brotliDecompress(data, options, done);
  });
}

/** CRC-32 (IEEE), zlib's. */
export function crc32(data: Uint8Array): number {
  return zlib.crc32(data);
}
