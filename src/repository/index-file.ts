import { TidemarkError } from '../errors.ts';
import { CHUNK_TYPES, type ChunkId, type ChunkType, type PackId } from './format.ts';
import type { PackEntry } from './pack.ts';

/**
 * An index file's content (docs/repository-format.md, "Index"). A pack's entries are kept as **rows**, the
 * binary layout of version 2, in memory as on disk:
 *
 *   row := id(32) type(uint8: 0 data, 1 tree) codec(uint8) rawLength(uint32 LE) offset(uint32 LE) length(uint32 LE)
 *
 * Reading a version 2 file is then slicing the decrypted blob: no parse and no object per chunk (a JSON index of
 * 200,000 chunks took ~0.3 s and ~150 MB at its peak to load).
 */
export const ROW_BYTES = 46;

/** One pack as an index lists it: `rows` holds `ROW_BYTES` per chunk, in the pack's order. */
export interface IndexedPack {
  id: PackId;
  size: number;
  rows: Buffer;
}

/** `index/<id>`: the packs one writer added; `supersedes` lists index files it replaces (prune, repair). */
export interface IndexFile {
  packs: IndexedPack[];
  supersedes?: string[];
}

/** The repository format version from which index files are binary; version 1 repositories keep JSON ones. */
export const BINARY_INDEX_VERSION = 2;
const MAGIC = Buffer.from('TMIX');
const HEX_ID = /^[0-9a-f]{64}$/;

export function rowsOf(entries: readonly PackEntry[]): Buffer {
  const rows = Buffer.alloc(entries.length * ROW_BYTES);
  for (const [i, entry] of entries.entries()) writeRow(rows, i * ROW_BYTES, entry);
  return rows;
}

export function rowCount(rows: Buffer): number {
  return rows.length / ROW_BYTES;
}

/** The entry of row `i`. */
export function entryAt(rows: Buffer, i: number): PackEntry {
  const at = i * ROW_BYTES;
  return {
    id: rows.toString('hex', at, at + 32) as ChunkId,
    type: CHUNK_TYPES[rows[at + 32] as number] as ChunkType,
    codec: rows[at + 33] as number,
    rawLength: rows.readUInt32LE(at + 34),
    offset: rows.readUInt32LE(at + 38),
    length: rows.readUInt32LE(at + 42),
  };
}

export function entriesOf(rows: Buffer): PackEntry[] {
  return Array.from({ length: rowCount(rows) }, (_, i) => entryAt(rows, i));
}

function writeRow(rows: Buffer, at: number, entry: PackEntry): void {
  if (!HEX_ID.test(entry.id)) throw new TypeError(`chunk id ${entry.id} is not 64 hex digits`);
  const type = CHUNK_TYPES.indexOf(entry.type);
  if (type < 0) throw new TypeError(`chunk ${entry.id} has unknown type ${entry.type}`);
  rows.write(entry.id, at, 'hex');
  rows[at + 32] = type;
  rows[at + 33] = entry.codec;
  rows.writeUInt32LE(entry.rawLength, at + 34);
  rows.writeUInt32LE(entry.offset, at + 38);
  rows.writeUInt32LE(entry.length, at + 42);
}

/**
 * The plaintext of an index file for a repository of format `version`: JSON for version 1 (which readers of
 * version 1 understand), binary from version 2:
 *
 *   file := "TMIX" version(uint8 = 2) count(uint32 LE) supersedes*count count(uint32 LE) pack*count
 *   supersedes := length(uint16 LE) utf8 name
 *   pack := id(32) size(uint64 LE) count(uint32 LE) row*count
 */
export function encodeIndexFile(file: IndexFile, version: number): Buffer {
  const supersedes = file.supersedes ?? [];
  if (version < BINARY_INDEX_VERSION) {
    const packs = file.packs.map((p) => ({ id: p.id, size: p.size, chunks: entriesOf(p.rows) }));
    return Buffer.from(JSON.stringify({ version: 1, packs, ...(file.supersedes ? { supersedes } : {}) }));
  }
  const names = supersedes.map((name) => Buffer.from(name));
  const size =
    MAGIC.length +
    1 +
    4 +
    names.reduce((sum, n) => sum + 2 + n.length, 0) +
    4 +
    file.packs.reduce((sum, p) => sum + 32 + 8 + 4 + p.rows.length, 0);
  const out = Buffer.alloc(size);
  let at = MAGIC.copy(out, 0);
  at = out.writeUInt8(BINARY_INDEX_VERSION, at);
  at = out.writeUInt32LE(names.length, at);
  for (const name of names) {
    at = out.writeUInt16LE(name.length, at);
    at += name.copy(out, at);
  }
  at = out.writeUInt32LE(file.packs.length, at);
  for (const pack of file.packs) {
    if (!HEX_ID.test(pack.id)) throw new TypeError(`pack id ${pack.id} is not 64 hex digits`);
    at += out.write(pack.id, at, 'hex');
    at = out.writeBigUInt64LE(BigInt(pack.size), at);
    at = out.writeUInt32LE(rowCount(pack.rows), at);
    at += pack.rows.copy(out, at);
  }
  return out;
}

/** Reads either encoding. The rows of a binary file are views of `plain`. Fails with code Corrupt. */
export function decodeIndexFile(plain: Buffer, name: string): IndexFile {
  if (plain.subarray(0, MAGIC.length).equals(MAGIC)) return decodeBinary(plain, name);
  const json = JSON.parse(plain.toString('utf8')) as {
    packs?: { id: PackId; size: number; chunks: PackEntry[] }[];
    supersedes?: string[];
  };
  if (!Array.isArray(json.packs)) throw new TidemarkError('Corrupt', `${name} is not an index file (no packs)`);
  const packs = json.packs.map((p) => ({ id: p.id, size: p.size, rows: rowsOf(p.chunks) }));
  return { packs, ...(json.supersedes ? { supersedes: json.supersedes } : {}) };
}

function decodeBinary(plain: Buffer, name: string): IndexFile {
  let at = MAGIC.length;
  const need = (bytes: number): number => {
    if (at + bytes > plain.length)
      throw new TidemarkError('Corrupt', `${name} ends at byte ${plain.length}, inside what it lists`);
    const start = at;
    at += bytes;
    return start;
  };
  const version = plain.readUInt8(need(1));
  if (version !== BINARY_INDEX_VERSION)
    throw new TidemarkError('Unsupported', `${name} is an index file of version ${version}; this tidemark reads 2`);
  const supersedes = Array.from({ length: plain.readUInt32LE(need(4)) }, () => {
    const length = plain.readUInt16LE(need(2));
    const start = need(length);
    return plain.toString('utf8', start, start + length);
  });
  const packs = Array.from({ length: plain.readUInt32LE(need(4)) }, (): IndexedPack => {
    const start = need(32 + 8 + 4);
    const id = plain.toString('hex', start, start + 32) as PackId;
    const size = Number(plain.readBigUInt64LE(start + 32));
    const count = plain.readUInt32LE(start + 40);
    const rowsAt = need(count * ROW_BYTES);
    const rows = plain.subarray(rowsAt, rowsAt + count * ROW_BYTES);
    for (let row = 32; row < rows.length; row += ROW_BYTES)
      if ((rows[row] as number) >= CHUNK_TYPES.length)
        throw new TidemarkError('Corrupt', `${name}: a chunk of pack ${id.slice(0, 12)} has unknown type ${rows[row]}`);
    return { id, size, rows };
  });
  if (at !== plain.length)
    throw new TidemarkError('Corrupt', `${name} has ${plain.length - at} bytes after what it lists`);
  return { packs, supersedes };
}
