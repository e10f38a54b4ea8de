import { TidemarkError } from '../errors.ts';
import { open, seal } from './crypto.ts';
import { CHUNK_TYPES, type ChunkId, type ChunkType, type PackId, sha256Hex } from './format.ts';

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

export class PackWriter {
  private readonly records: Buffer[] = [];
  private readonly entries: PackEntry[] = [];
  private bytes = 0;

  constructor(private readonly key: Buffer) {}

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.length;
  }

  add(id: ChunkId, type: ChunkType, codec: number, rawLength: number, compressed: Buffer): void {
    const record = seal(this.key, compressed, Buffer.from(id, 'hex'));
    this.entries.push({ id, type, codec, rawLength, offset: this.bytes, length: record.length });
    this.records.push(record);
    this.bytes += record.length;
  }

  /** The finished pack: its bytes, id and entries. The writer must not be used afterwards. */
  finish(): { id: PackId; bytes: Buffer; entries: PackEntry[] } {
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
    const header = seal(this.key, plain, HEADER_AAD);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(header.length);
    const bytes = Buffer.concat([...this.records, header, trailer]);
    return { id: sha256Hex(bytes) as PackId, bytes, entries: this.entries };
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
