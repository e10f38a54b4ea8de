import { TidemarkError, withContext } from '../errors.ts';
import { CODEC_ZSTD, compressParts, decompress } from './compression.ts';
import { CHUNK_TYPES, type ChunkId, type ChunkType, type PackId } from './format.ts';
import type { PackEntry } from './pack.ts';

/**
 * An index file's content (docs/repository-format.md, "Index"). In memory a pack's entries are **rows**:
 *
 *   row := id(32) type(uint8: 0 data, 1 tree) codec(uint8) rawLength(uint32 LE) offset(uint32 LE) length(uint32 LE)
 *
 * Reading a version 2 file (columns, compressed) fills one buffer of rows: no parse and no object per chunk (a
 * JSON index of 200,000 chunks took ~0.3 s and ~150 MB at its peak to load).
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
  return { id: rows.toString('hex', at, at + 32) as ChunkId, ...locationAt(rows, i) };
}

/** Row `i` without its id (what a lookup by id returns). */
export function locationAt(rows: Buffer, i: number): Omit<PackEntry, 'id'> {
  const at = i * ROW_BYTES;
  return {
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
 * version 1 understand), binary from version 2, its body compressed (zstd level 3, or stored as is when that saves
 * little: `codec` as for chunks):
 *
 *   file       := "TMIX" version(uint8 = 2) codec(uint8) length(uint64 LE: the body's) stored body
 *   body       := count(uint32 LE) supersedes*count count(uint32 LE) pack*count columns
 *   supersedes := length(uint16 LE) utf8 name
 *   pack       := id(32) size(uint64 LE) count(uint32 LE)
 *   columns    := of every row, the packs' in order: id(32)* type(uint8)* codec(uint8)* rawLength(uint32 LE)*
 *                 length(uint32 LE)* gap(uint32 LE)*
 *   gap        := offset − (the previous row's offset + length, or 0 for a pack's first row), modulo 2^32
 *
 * In columns the ids (random) stay apart from what compresses, and a pack's records lie back to back, so gaps are
 * zeros: ~36 bytes a chunk stored instead of 46.
 */
export async function encodeIndexFile(file: IndexFile, version: number): Promise<Buffer> {
  const supersedes = file.supersedes ?? [];
  if (version < BINARY_INDEX_VERSION) {
    const packs = file.packs.map((p) => ({ id: p.id, size: p.size, chunks: entriesOf(p.rows) }));
    return Buffer.from(JSON.stringify({ version: 1, packs, ...(file.supersedes ? { supersedes } : {}) }));
  }
  const names = supersedes.map((name) => Buffer.from(name));
  const rows = file.packs.reduce((sum, p) => sum + rowCount(p.rows), 0);
  const head = 4 + names.reduce((sum, n) => sum + 2 + n.length, 0) + 4 + file.packs.length * PACK_BYTES;
  const body = Buffer.alloc(head + rows * ROW_BYTES);
  let at = body.writeUInt32LE(names.length, 0);
  for (const name of names) {
    at = body.writeUInt16LE(name.length, at);
    at += name.copy(body, at);
  }
  at = body.writeUInt32LE(file.packs.length, at);
  for (const pack of file.packs) {
    if (!HEX_ID.test(pack.id)) throw new TypeError(`pack id ${pack.id} is not 64 hex digits`);
    at += body.write(pack.id, at, 'hex');
    at = body.writeBigUInt64LE(BigInt(pack.size), at);
    at = body.writeUInt32LE(rowCount(pack.rows), at);
  }
  const columns = columnsAt(head, rows);
  let row = 0;
  for (const pack of file.packs) {
    let expected = 0;
    for (let r = 0; r < pack.rows.length; r += ROW_BYTES, row++) {
      const offset = pack.rows.readUInt32LE(r + 38);
      const length = pack.rows.readUInt32LE(r + 42);
      pack.rows.copy(body, columns.ids + row * 32, r, r + 32);
      body[columns.types + row] = pack.rows[r + 32] as number;
      body[columns.codecs + row] = pack.rows[r + 33] as number;
      body.writeUInt32LE(pack.rows.readUInt32LE(r + 34), columns.rawLengths + row * 4);
      body.writeUInt32LE(length, columns.lengths + row * 4);
      body.writeUInt32LE((offset - expected) >>> 0, columns.gaps + row * 4);
      expected = (offset + length) >>> 0;
    }
  }
  // The stream's parts are views of a buffer the next compression on this thread overwrites: copied at once, and
  // only once (an index of 200,000 chunks is ~7 MiB, written at the end of a backup).
  const stored = compressParts(body, CODEC_ZSTD, { level: 3 });
  const out = Buffer.alloc(MAGIC.length + 1 + 1 + 8);
  MAGIC.copy(out);
  out.writeUInt8(BINARY_INDEX_VERSION, 4);
  out.writeUInt8(stored.codec, 5);
  out.writeBigUInt64LE(BigInt(body.length), 6);
  return Buffer.concat([out, ...stored.parts]);
}

const PACK_BYTES = 32 + 8 + 4;

/** Where each column of `rows` rows starts in a body whose columns start at `at`. */
function columnsAt(at: number, rows: number) {
  const ids = at;
  const types = ids + rows * 32;
  const codecs = types + rows;
  const rawLengths = codecs + rows;
  const lengths = rawLengths + rows * 4;
  const gaps = lengths + rows * 4;
  return { ids, types, codecs, rawLengths, lengths, gaps, end: gaps + rows * 4 };
}

/** Reads either encoding. Fails with code Corrupt (Unsupported for a newer binary version). */
export async function decodeIndexFile(plain: Buffer, name: string): Promise<IndexFile> {
  if (plain.subarray(0, MAGIC.length).equals(MAGIC)) return decodeBinary(plain, name);
  const json = JSON.parse(plain.toString('utf8')) as {
    packs?: { id: PackId; size: number; chunks: PackEntry[] }[];
    supersedes?: string[];
  };
  if (!Array.isArray(json.packs)) throw new TidemarkError('Corrupt', `${name} is not an index file (no packs)`);
  const packs = json.packs.map((p) => ({ id: p.id, size: p.size, rows: rowsOf(p.chunks) }));
  return { packs, ...(json.supersedes ? { supersedes: json.supersedes } : {}) };
}

async function decodeBinary(plain: Buffer, name: string): Promise<IndexFile> {
  if (plain.length < MAGIC.length + 1 + 1 + 8) throw new TidemarkError('Corrupt', `${name} is cut short`);
  const version = plain.readUInt8(MAGIC.length);
  if (version !== BINARY_INDEX_VERSION)
    throw new TidemarkError('Unsupported', `${name} is an index file of version ${version}; this tidemark reads 2`);
  const length = Number(plain.readBigUInt64LE(MAGIC.length + 2));
  const body = await decompress(plain.readUInt8(MAGIC.length + 1), plain.subarray(MAGIC.length + 10), length).catch(
    (error: unknown) => {
      throw withContext(name, error);
    },
  );
  let at = 0;
  const need = (bytes: number): number => {
    if (at + bytes > body.length)
      throw new TidemarkError('Corrupt', `${name} ends at byte ${body.length}, inside what it lists`);
    const start = at;
    at += bytes;
    return start;
  };
  const supersedes = Array.from({ length: body.readUInt32LE(need(4)) }, () => {
    const start = need(body.readUInt16LE(need(2)));
    return body.toString('utf8', start, at);
  });
  const listed = Array.from({ length: body.readUInt32LE(need(4)) }, () => {
    const start = need(PACK_BYTES);
    return {
      id: body.toString('hex', start, start + 32) as PackId,
      size: Number(body.readBigUInt64LE(start + 32)),
      count: body.readUInt32LE(start + 40),
    };
  });
  const total = listed.reduce((sum, p) => sum + p.count, 0);
  const columns = columnsAt(at, total);
  if (columns.end !== body.length)
    throw new TidemarkError('Corrupt', `${name} has ${body.length} bytes, its ${total} chunks need ${columns.end}`);
  const rows = Buffer.alloc(total * ROW_BYTES);
  let row = 0;
  const packs = listed.map(({ id, size, count }): IndexedPack => {
    const start = row * ROW_BYTES;
    let offset = 0;
    for (const end = row + count; row < end; row++) {
      const r = row * ROW_BYTES;
      const type = body[columns.types + row] as number;
      if (type >= CHUNK_TYPES.length)
        throw new TidemarkError('Corrupt', `${name}: a chunk of pack ${id.slice(0, 12)} has unknown type ${type}`);
      const length = body.readUInt32LE(columns.lengths + row * 4);
      offset = (offset + body.readUInt32LE(columns.gaps + row * 4)) >>> 0;
      body.copy(rows, r, columns.ids + row * 32, columns.ids + row * 32 + 32);
      rows[r + 32] = type;
      rows[r + 33] = body[columns.codecs + row] as number;
      rows.writeUInt32LE(body.readUInt32LE(columns.rawLengths + row * 4), r + 34);
      rows.writeUInt32LE(offset, r + 38);
      rows.writeUInt32LE(length, r + 42);
      offset = (offset + length) >>> 0;
    }
    return { id, size, rows: rows.subarray(start, row * ROW_BYTES) };
  });
  return { packs, supersedes };
}
