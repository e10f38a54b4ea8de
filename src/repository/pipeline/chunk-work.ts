import { withContext } from '../../errors.ts';
import { compressParts, decompressSync } from '../compression.ts';
import { ENVELOPE_OVERHEAD, hmac, sealInto } from '../crypto.ts';
import type { ChunkId } from '../format.ts';
import { openRecord } from '../pack.ts';

/**
 * The CPU work of storing a chunk, synchronous so it runs the same on a pipeline worker and inline (small
 * chunks, where posting to a worker costs more than the work).
 */

/**
 * The chunk id: HMAC-SHA256 under the repository's chunk-id key of the chain id then the content (given whole, or
 * as the pieces it is made of, in order).
 */
export function chunkIdOf(chunkIdKey: Uint8Array, chain: Uint8Array, ...data: Uint8Array[]): ChunkId {
  return hmac(chunkIdKey, chain, ...data).toString('hex') as ChunkId;
}

/** The most bytes `sealChunk` writes for a chunk of `length` bytes (stored as is, plus the envelope). */
export function sealedBound(length: number): number {
  return length + ENVELOPE_OVERHEAD;
}

/**
 * A pack record: the chunk compressed (or as is, see compression.ts) and sealed with the chunk id as aad,
 * written into `out` (at least `sealedBound(data.length)` bytes). Returns the codec and record length.
 */
export function sealChunk(
  encryptionKey: Uint8Array,
  id: ChunkId,
  data: Uint8Array,
  out: Uint8Array,
): { codec: number; length: number } {
  const compressed = compressParts(data);
  const length = sealInto(encryptionKey, compressed.parts, Buffer.from(id, 'hex'), out);
  return { codec: compressed.codec, length };
}

/** Records of one pack read back to back in `input`, to open (decrypt, decompress) in one pipeline job. */
export interface RecordsToOpen {
  pack: string;
  ids: string[];
  /** Record i is input[starts[i], starts[i] + lengths[i]). */
  starts: number[];
  lengths: number[];
  codecs: number[];
  rawLengths: number[];
}

/**
 * The chunks of `records` opened (see `openRecord` and `decompressSync`: damage is Corrupt, naming the chunk and
 * its pack), back to back in one new buffer; chunk i ends at ends[i].
 */
export function openChunks(
  encryptionKey: Uint8Array,
  input: Uint8Array,
  records: RecordsToOpen,
): { output: ArrayBuffer; ends: number[] } {
  const key = Buffer.from(encryptionKey.buffer, encryptionKey.byteOffset, encryptionKey.length);
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.length);
  const total = records.rawLengths.reduce((sum, length) => sum + length, 0);
  const output = new ArrayBuffer(total);
  const out = new Uint8Array(output);
  const ends: number[] = [];
  let at = 0;
  for (const [i, id] of records.ids.entries()) {
    const start = records.starts[i] as number;
    const record = bytes.subarray(start, start + (records.lengths[i] as number));
    try {
      const opened = openRecord(key, id as ChunkId, record, records.pack);
      const chunk = decompressSync(records.codecs[i] as number, opened, records.rawLengths[i] as number);
      out.set(chunk, at);
      at += chunk.length;
    } catch (error) {
      throw withContext(`reading chunk ${id.slice(0, 12)} from pack ${records.pack}`, error);
    }
    ends.push(at);
  }
  return { output, ends };
}
