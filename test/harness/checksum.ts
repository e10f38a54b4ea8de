import { Murmur128 } from '../../src/sources/table-stats.ts';

/**
 * A table checksum computed the slow, obvious way, to check the scanners against its definition
 * (docs/repository-format.md, "Table statistics"): the sum mod 2^128 of each row's MurmurHash3_x86_128
 * (seed 0), its 16 bytes read as a little-endian integer. Murmur128 itself is checked against smhasher
 * vectors (table-stats.test.ts).
 */
export function referenceChecksum(rows: string[]): string {
  const murmur = new Murmur128();
  let sum = 0n;
  for (const row of rows) {
    const bytes = Buffer.from(row);
    murmur.update(bytes, 0, bytes.length);
    const { h1, h2, h3, h4 } = murmur.finish();
    sum += (BigInt(h4) << 96n) | (BigInt(h3) << 64n) | (BigInt(h2) << 32n) | BigInt(h1);
  }
  return (sum % (1n << 128n)).toString(16).padStart(32, '0');
}
