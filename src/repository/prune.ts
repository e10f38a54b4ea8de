import { blobNames, type ChunkId, idOf, type PackId, prefixes, type SnapshotId } from './format.ts';
import type { IndexFile } from './index.ts';
import { whileHolding } from './lock.ts';
import { mapLimit, Repository } from './repository.ts';
import { walkTrees } from './walk.ts';

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

/**
 * Deletes what no snapshot references, under an exclusive lock (so no backup is writing packs it has
 * not indexed). Packs mostly unused are repacked. Order: new packs, new index (superseding the old
 * ones), delete old index files, delete packs — a crash at any point leaves a readable repository.
 */
export async function prune(repository: Repository, options: { repackThreshold?: number } = {}): Promise<PruneReport> {
  const lock = await repository.lock(true);
  return whileHolding(lock, async () => {
    // Re-read everything under the lock: a backup may have finished since the repository was opened.
    const fresh = await Repository.reopen(repository);
    const store = fresh.chunkStore();
    const used = new Set<ChunkId>();
    const seen = new Set<ChunkId>();
    for (const snapshot of await fresh.snapshots()) {
      used.add(snapshot.root);
      await walkTrees(
        store,
        snapshot.root,
        (_id, entries) => {
          for (const entry of entries) {
            if (entry.subtree) used.add(entry.subtree);
            for (const chunk of entry.content ?? []) used.add(chunk);
          }
        },
        seen,
      );
    }

    const threshold = options.repackThreshold ?? 0.5;
    const keep: PackId[] = [];
    const remove: PackId[] = [];
    const repack: PackId[] = [];
    for (const pack of fresh.index.packIds()) {
      const chunks = fresh.index.chunksOf(pack);
      const live = chunks.filter((c) => used.has(c) && fresh.index.get(c)?.pack === pack).length;
      if (live === 0) remove.push(pack);
      else if (1 - live / chunks.length >= threshold) repack.push(pack);
      else keep.push(pack);
    }

    const writer = fresh.chunkStore();
    const stillNeeded = new Set<ChunkId>();
    for (const pack of repack) {
      for (const chunk of fresh.index.chunksOf(pack)) {
        if (!used.has(chunk) || fresh.index.get(chunk)?.pack !== pack || stillNeeded.has(chunk)) continue;
        stillNeeded.add(chunk);
        const location = fresh.index.get(chunk);
        await writer.putRepacked(chunk, location?.type ?? 'data', await store.get(chunk));
      }
    }
    const written = await writer.flush();

    const newIndex: IndexFile = fresh.index.toFile(keep);
    newIndex.packs.push(...written.packs);
    newIndex.supersedes = [...fresh.indexFiles];
    await fresh.saveIndex(newIndex);
    await mapLimit(newIndex.supersedes, 8, (id) => fresh.storage.delete(blobNames.index(id)));

    const indexed = new Set<string>(newIndex.packs.map((p) => p.id));
    const obsolete: { name: string; size: number }[] = [];
    for await (const blob of fresh.storage.list(prefixes.data)) if (!indexed.has(idOf(blob.name))) obsolete.push(blob);
    await mapLimit(obsolete, 8, (blob) => fresh.storage.delete(blob.name));
    return {
      deletedPacks: obsolete.length,
      deletedBytes: obsolete.reduce((sum, b) => sum + b.size, 0),
      repackedPacks: repack.length,
      keptPacks: keep.length,
    };
  });
}
