import { createHash } from 'node:crypto';
import { TidemarkError } from '../errors.ts';
import { decompress } from './compression.ts';
import { ENVELOPE_OVERHEAD, open, sealInto } from './crypto.ts';
import { CHUNK_TYPES, type ChunkId, type ChunkType, type PackId } from './format.ts';

/**
 * A pack holds many encrypted chunks, so the repository has few objects:
 *
 *   pack   := record* header headerLength(uint32 LE)
 *   record := seal(encryption key, compressed chunk, aad = chunk id bytes)
 *   header := seal(encryption key, version(1) count(uint32 LE) entry*count, aad = "tidemark pack header")
 *   entry  := type(1) codec(1) rawLength(uint32 LE) storedLength(uint32 LE) id(32)
 *
 * A pack's id is the SHA-256 of its bytes, so `check` verifies a pack without the key.
 */
export interface PackEntry {
  id: ChunkId;
  type: ChunkType;
  codec: number;
  /** Plaintext length. */
  rawLength: number;
  /** Offset and length of the record in the pack. */
  offset: number;
  length: number;
}

const HEADER_AAD = Buffer.from('tidemark pack header');
const HEADER_VERSION = 1;
const ENTRY_BYTES = 1 + 1 + 4 + 4 + 32;

/**
 * Builds a pack in one buffer, growing it only when a record does not fit (give it one of
 * `packSize + largest record` to avoid that), and hashes it as it goes: no copy of the records at the
 * end and no second pass for the pack id.
 */
export class PackWriter {
  private readonly entries: PackEntry[] = [];
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly key: Buffer,
    private buffer: Buffer = Buffer.allocUnsafe(1024 * 1024),
  ) {}

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Seals `compressed` into the pack. */
  add(id: ChunkId, type: ChunkType, codec: number, rawLength: number, compressed: Buffer): void {
    const out = this.reserve(compressed.length + ENVELOPE_OVERHEAD);
    this.commit(id, type, codec, rawLength, sealInto(this.key, [compressed], Buffer.from(id, 'hex'), out));
  }

  /** Adds a record sealed elsewhere (a pipeline worker), copying it in. */
  addSealed(id: ChunkId, type: ChunkType, codec: number, rawLength: number, record: Uint8Array): void {
    this.reserve(record.length).set(record);
    this.commit(id, type, codec, rawLength, record.length);
  }

  /**
   * The free space at the end of the pack, at least `length` bytes, to write a record into (then
   * `commit` it).
   */
  private reserve(length: number): Buffer {
    const needed = this.bytes + length;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, 2 * this.buffer.length));
      this.buffer.copy(grown, 0, 0, this.bytes);
      this.buffer = grown;
    }
    return this.buffer.subarray(this.bytes);
  }

  /** Adds the record of `length` bytes written at the start of `reserve`'s space. */
  private commit(id: ChunkId, type: ChunkType, codec: number, rawLength: number, length: number): void {
    this.hash.update(this.buffer.subarray(this.bytes, this.bytes + length));
    this.entries.push({ id, type, codec, rawLength, offset: this.bytes, length });
    this.bytes += length;
  }

  /**
   * The finished pack: its bytes (a view of the writer's buffer, which `buffer` returns for reuse once
   * the bytes are uploaded), id and entries. The writer must not be used afterwards.
   */
  finish(): { id: PackId; bytes: Buffer; entries: PackEntry[]; buffer: Buffer } {
    const plain = Buffer.alloc(5 + ENTRY_BYTES * this.entries.length);
    plain.writeUInt8(HEADER_VERSION, 0);
    plain.writeUInt32LE(this.entries.length, 1);
    this.entries.forEach((e, i) => {
      const at = 5 + i * ENTRY_BYTES;
      plain.writeUInt8(CHUNK_TYPES.indexOf(e.type), at);
      plain.writeUInt8(e.codec, at + 1);
      plain.writeUInt32LE(e.rawLength, at + 2);
      plain.writeUInt32LE(e.length, at + 6);
      Buffer.from(e.id, 'hex').copy(plain, at + 10);
    });
    const out = this.reserve(plain.length + ENVELOPE_OVERHEAD + 4);
    const headerLength = sealInto(this.key, [plain], HEADER_AAD, out);
    out.writeUInt32LE(headerLength, headerLength);
    const tail = out.subarray(0, headerLength + 4);
    this.hash.update(tail);
    this.bytes += tail.length;
    const id = this.hash.digest('hex') as PackId;
    return { id, bytes: this.buffer.subarray(0, this.bytes), entries: this.entries, buffer: this.buffer };
  }
}

/** Reads the header of a whole pack (check, index rebuild). Fails with code Corrupt naming the pack. */
export function readPackHeader(key: Buffer, packId: string, bytes: Buffer): PackEntry[] {
  const what = `pack ${packId}`;
  if (bytes.length < 4) throw new TidemarkError('Corrupt', `${what}: too short`);
  const headerLength = bytes.readUInt32LE(bytes.length - 4);
  if (headerLength + 4 > bytes.length) throw new TidemarkError('Corrupt', `${what}: header length out of range`);
  const plain = open(key, bytes.subarray(bytes.length - 4 - headerLength, bytes.length - 4), HEADER_AAD, what);
  if (plain.readUInt8(0) !== HEADER_VERSION)
    throw new TidemarkError('Unsupported', `${what}: pack header version ${plain.readUInt8(0)}`);
  const count = plain.readUInt32LE(1);
  if (plain.length !== 5 + count * ENTRY_BYTES) throw new TidemarkError('Corrupt', `${what}: header size mismatch`);
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const at = 5 + i * ENTRY_BYTES;
    const type = CHUNK_TYPES[plain.readUInt8(at)];
    if (!type) throw new TidemarkError('Corrupt', `${what}: unknown chunk type ${plain.readUInt8(at)}`);
    const length = plain.readUInt32LE(at + 6);
    entries.push({
      type,
      codec: plain.readUInt8(at + 1),
      rawLength: plain.readUInt32LE(at + 2),
      offset,
      length,
      id: plain.subarray(at + 10, at + 42).toString('hex') as ChunkId,
    });
    offset += length;
  }
  return entries;
}

/** Decrypts one record (compressed plaintext). The aad binds it to its id: a moved record fails. */
export function openRecord(key: Buffer, id: ChunkId, record: Buffer, packId: string): Buffer {
  return open(key, record, Buffer.from(id, 'hex'), `chunk ${id.slice(0, 12)} in pack ${packId}`);
}

/** The chunk a record holds: decrypted, then decompressed with its codec to its raw length (both from a pack entry). */
export function decodeRecord(
  key: Buffer,
  id: ChunkId,
  { codec, rawLength }: Pick<PackEntry, 'codec' | 'rawLength'>,
  record: Buffer,
  packId: string,
): Promise<Buffer> {
  return decompress(codec, openRecord(key, id, record, packId), rawLength);
}
