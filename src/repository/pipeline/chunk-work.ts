import { compressParts } from '../compression.ts';
import { ENVELOPE_OVERHEAD, hmac, sealInto } from '../crypto.ts';
import type { ChunkId } from '../format.ts';

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
