import { isCode, TidemarkError } from '../errors.ts';
import { blobNames, idOf, type PackId, prefixes } from './format.ts';
import { type IndexFile, rowCount, rowsOf } from './index-file.ts';
import { whileHolding } from './lock.ts';
import { type PackEntry, readPackHeader } from './pack.ts';
import { mapLimit, type Repository } from './repository.ts';
import type { Storage } from './storage/storage.ts';

export interface RepairIndexReport {
  /** Packs the new index lists, and their chunks. */
  packs: number;
  chunks: number;
  /** Index files the new one replaced (damaged ones included). */
  replacedIndexFiles: number;
  /** Packs whose header cannot be read and that no readable index listed: left out, their chunks are lost. */
  unreadablePacks: { pack: string; reason: string }[];
}

/**
 * `repo repair index`: rebuilds the index from the packs' own encrypted headers, under an exclusive lock.
 * Every pack in storage is listed (a pack whose header is damaged keeps the entries a readable index had
 * for it); packs gone from storage are dropped. The new index supersedes every index file present, which
 * are then deleted: a crash in between leaves the new index in charge.
 */
export async function repairIndex(repository: Repository): Promise<RepairIndexReport> {
  const lock = await repository.lock(true);
  return whileHolding(lock, async () => {
    const storage = repository.storage;
    const oldIndexFiles: string[] = [];
    for await (const blob of storage.list(prefixes.index)) oldIndexFiles.push(idOf(blob.name));
    const stored: { id: PackId; size: number }[] = [];
    for await (const blob of storage.list(prefixes.data))
      stored.push({ id: idOf(blob.name) as PackId, size: blob.size });
    stored.sort((a, b) => a.id.localeCompare(b.id));

    const report: RepairIndexReport = { packs: 0, chunks: 0, replacedIndexFiles: 0, unreadablePacks: [] };
    const rebuilt = await mapLimit(stored, 8, async ({ id, size }) => {
      try {
        return { id, size, rows: rowsOf(await readStoredPackHeader(storage, repository.keys.encryption, id, size)) };
      } catch (error) {
        if (isCode(error, 'NotFound')) return undefined;
        const known = repository.index.toFile([id]).packs[0];
        if (known?.size === size) return known;
        report.unreadablePacks.push({ pack: id, reason: (error as Error).message });
        return undefined;
      }
    });
    const file: IndexFile = {
      packs: rebuilt.filter((p) => p !== undefined),
      supersedes: oldIndexFiles,
    };
    await repository.saveIndex(file);
    await mapLimit(oldIndexFiles, 8, (id) => storage.delete(blobNames.index(id)));
    report.packs = file.packs.length;
    report.chunks = file.packs.reduce((sum, p) => sum + rowCount(p.rows), 0);
    report.replacedIndexFiles = oldIndexFiles.length;
    return report;
  });
}

/** How much of a pack's end is read at first: the whole header of any pack of up to ~1500 chunks. */
const TAIL_BYTES = 64 * 1024;

/** Reads a stored pack's header with ranged reads of its end (not the whole pack). Fails with code Corrupt. */
export async function readStoredPackHeader(
  storage: Storage,
  key: Buffer,
  pack: PackId,
  size: number,
): Promise<PackEntry[]> {
  const name = blobNames.pack(pack);
  if (size < 4) throw new TidemarkError('Corrupt', `pack ${pack}: ${size} bytes is too short for a pack`);
  let tail = await storage.get(name, { offset: size - Math.min(size, TAIL_BYTES), length: Math.min(size, TAIL_BYTES) });
  const headerLength = tail.readUInt32LE(tail.length - 4);
  if (headerLength + 4 > size) throw new TidemarkError('Corrupt', `pack ${pack}: header length out of range`);
  if (headerLength + 4 > tail.length)
    tail = await storage.get(name, { offset: size - headerLength - 4, length: headerLength + 4 });
  const entries = readPackHeader(key, pack, tail);
  const records = entries.reduce((sum, e) => sum + e.length, 0);
  if (records + headerLength + 4 !== size)
    throw new TidemarkError(
      'Corrupt',
      `pack ${pack}: its header describes ${records} bytes of records, it has ${size - headerLength - 4}`,
    );
  return entries;
}
