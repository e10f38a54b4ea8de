/**
 * The gear table of the content-defined chunker: 256 pseudo-random 32-bit values, one per byte value,
 * derived from the repository's 32-byte chunker seed. Each repository has its own table, so chunk
 * boundaries (and with them chunk sizes) in one repository say nothing about content that could be
 * compared with another repository (like borg's chunker seed).
 *
 * Derivation (part of the repository format; changing it changes every boundary and so breaks dedup
 * against existing data, but never readability):
 *
 *   block_i = HMAC-SHA256(key = seed, message = "tidemark/chunker/gear/v1" || uint32be(i)), i = 0..31
 *   table[j] = uint32le(block_0 || ... || block_31, offset 4*j), j = 0..255
 */
import { createHmac } from 'node:crypto';
import { TidemarkError } from '../../errors.ts';

export const SEED_LENGTH = 32;
const LABEL = Buffer.from('tidemark/chunker/gear/v1', 'ascii');

export function gearTable(seed: Buffer): Uint32Array {
  if (!Buffer.isBuffer(seed) || seed.length !== SEED_LENGTH)
    throw new TidemarkError(
      'InvalidArgument',
      `chunker seed must be a Buffer of ${SEED_LENGTH} bytes, got ${Buffer.isBuffer(seed) ? `${seed.length} bytes` : typeof seed}`,
    );
  const bytes = Buffer.alloc(256 * 4);
  const counter = Buffer.alloc(4);
  for (let i = 0; i < bytes.length / 32; i++) {
    counter.writeUInt32BE(i);
    createHmac('sha256', seed)
      .update(LABEL)
      .update(counter)
      .digest()
      .copy(bytes, i * 32);
  }
  const table = new Uint32Array(256);
  for (let j = 0; j < 256; j++) table[j] = bytes.readUInt32LE(j * 4);
  return table;
}
