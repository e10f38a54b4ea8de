import { chunksInUse } from './check.ts';
import { blobNames, type ChunkId, idOf, type PackId, prefixes, type SnapshotId } from './format.ts';
import { removeCrashLeftovers } from './housekeeping.ts';
import type { IndexFile } from './index-file.ts';
import { whileHolding } from './lock.ts';
import { mapLimit, type Repository } from './repository.ts';

export interface PruneReport {
  deletedPacks: number;
  deletedBytes: number;
  repackedPacks: number;
  keptPacks: number;
}

/** Removes snapshots (the data goes with the next prune). */
export async function forget(repository: Repository, ids: SnapshotId[]): Promise<void> {
  await mapLimit(ids, 8, (id) => repository.storage.delete(blobNames.snapshot(id)));
}

export interface PruneOptions {
  repackThreshold?: number;
  /** How long to wait for backups, copies and restores to finish; 0 (the default) fails at once with Locked. */
  lockWaitMs?: number;
}

/**
 * Deletes what no snapshot references, under an exclusive lock (so no backup is writing packs it has
 * not indexed, and no restore or copy is reading). Packs mostly unused are repacked. Order: new packs,
 * new index (superseding every index file found), delete old index files, delete packs — a crash at any
 * point leaves a readable repository (docs/repository-format.md, "Prune").
 */
export async function prune(repository: Repository, options: PruneOptions = {}): Promise<PruneReport> {
  // Reads the index again under the lock: a backup may have finished since the repository was opened.
  const lock = await repository.lock(true, { waitMs: options.lockWaitMs });
  return whileHolding(lock, async () => {
    const store = repository.chunkStore();
    const used = await chunksInUse(repository);
    await removeCrashLeftovers(repository.storage);

    const threshold = options.repackThreshold ?? 0.5;
    const keep: PackId[] = [];
    const remove: PackId[] = [];
    const repack: PackId[] = [];
    for (const pack of repository.index.packIds()) {
      const chunks = repository.index.chunksOf(pack);
      const live = chunks.filter((c) => used.has(c) && repository.index.get(c)?.pack === pack).length;
      if (live === 0) remove.push(pack);
      else if (1 - live / chunks.length >= threshold) repack.push(pack);
      else keep.push(pack);
    }

    const writer = repository.chunkStore();
    const stillNeeded = new Set<ChunkId>();
    for (const pack of repack) {
      for (const chunk of repository.index.chunksOf(pack)) {
        if (!used.has(chunk) || repository.index.get(chunk)?.pack !== pack || stillNeeded.has(chunk)) continue;
        stillNeeded.add(chunk);
        const location = repository.index.get(chunk);
        await writer.putRepacked(chunk, location?.type ?? 'data', await store.get(chunk));
      }
    }
    const written = await writer.flush();

    const newIndex: IndexFile = repository.index.toFile(keep);
    newIndex.packs.push(...written.packs);
    // Every index file found, superseded ones too: what a crashed prune left must never count again.
    newIndex.supersedes = [...repository.indexFiles];
    const newId = await repository.saveIndex(newIndex);
    await mapLimit(newIndex.supersedes, 8, (id) => repository.storage.delete(blobNames.index(id)));

    const indexed = new Set<string>(newIndex.packs.map((p) => p.id));
    for (const pack of await packsOfOtherIndexFiles(repository, new Set([...newIndex.supersedes, newId])))
      indexed.add(pack);
    const obsolete: { name: string; size: number }[] = [];
    for await (const blob of repository.storage.list(prefixes.data))
      if (!indexed.has(idOf(blob.name))) obsolete.push(blob);
    await mapLimit(obsolete, 8, (blob) => repository.storage.delete(blob.name));
    return {
      deletedPacks: obsolete.length,
      deletedBytes: obsolete.reduce((sum, b) => sum + b.size, 0),
      repackedPacks: repack.length,
      keptPacks: keep.length,
    };
  });
}

/**
 * Packs listed by index files that appeared after prune loaded the index (a writer that ignored or
 * outlived the lock): their packs stay, whatever this prune thought of them.
 */
async function packsOfOtherIndexFiles(repository: Repository, known: Set<string>): Promise<PackId[]> {
  const others: string[] = [];
  for await (const blob of repository.storage.list(prefixes.index))
    if (!known.has(idOf(blob.name))) others.push(blob.name);
  const files = await mapLimit(others, 8, (name) => repository.readIndexFile(name));
  return files.flatMap((file) => file.packs.map((p) => p.id));
}
