import { withContext } from '../errors.ts';
import { decompress } from './compression.ts';
import { blobNames, type ChunkId, idOf, type PackId, prefixes, sha256Hex } from './format.ts';
import { openRecord, readPackHeader } from './pack.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import { mapLimit, type Repository } from './repository.ts';
import { walkTrees } from './walk.ts';

export interface CheckReport {
  errors: string[];
  snapshots: number;
  packs: number;
  /** Packs in storage that no index lists: left by interrupted backups; `prune` removes them. */
  unreferencedPacks: number;
}

/**
 * Checks structure: every indexed pack exists with its size, every snapshot's trees decrypt and
 * every chunk they reference is indexed. With `readData`, also downloads every pack and verifies
 * its hash, header and every record. Errors name the pack and the snapshots that need it.
 */
export async function check(
  repository: Repository,
  options: { readData?: boolean; onProgress?: ProgressListener } = {},
): Promise<CheckReport> {
  const errors: string[] = [];
  const store = repository.chunkStore();
  const index = repository.index;
  const stored = new Map<string, number>();
  for await (const blob of repository.storage.list(prefixes.data)) stored.set(idOf(blob.name), blob.size);

  for (const pack of index.packIds()) {
    const size = stored.get(pack);
    if (size === undefined) errors.push(`pack ${pack} is indexed but missing from ${repository.storage.description}`);
    else if (size !== index.packSize(pack))
      errors.push(`pack ${pack} has ${size} bytes, the index says ${index.packSize(pack)}`);
  }

  const snapshotsOfPack = new Map<PackId, Set<string>>();
  const snapshots = await repository.snapshots();
  for (const snapshot of snapshots) {
    const needs = (chunk: ChunkId) => {
      const at = index.get(chunk);
      if (!at) return false;
      const set = snapshotsOfPack.get(at.pack) ?? new Set();
      set.add(snapshot.id);
      snapshotsOfPack.set(at.pack, set);
      return true;
    };
    try {
      needs(snapshot.root);
      await walkTrees(store, snapshot.root, (_id, entries, path) => {
        for (const entry of entries) {
          if (entry.subtree && !needs(entry.subtree))
            errors.push(`snapshot ${snapshot.id}: tree of ${path} is missing`);
          for (const chunk of entry.content ?? [])
            if (!needs(chunk))
              errors.push(`snapshot ${snapshot.id}: chunk ${chunk.slice(0, 12)} of ${path} is missing`);
        }
      });
    } catch (error) {
      errors.push(`snapshot ${snapshot.id}: ${withContext('reading its trees', error).message}`);
    }
  }

  if (options.readData) {
    const meter = new ProgressMeter(
      'check',
      options.onProgress,
      [...stored.values()].reduce((a, b) => a + b, 0),
    );
    await mapLimit(
      index.packIds().filter((p) => stored.has(p)),
      4,
      async (pack) => {
        const problem = await verifyPack(repository, pack);
        meter.add(stored.get(pack) ?? 0, 1);
        if (problem) {
          const needed = [...(snapshotsOfPack.get(pack) ?? [])];
          errors.push(`pack ${pack}: ${problem}; needed by snapshot(s) ${needed.length ? needed.join(', ') : 'none'}`);
        }
      },
    );
    meter.done();
  }
  return {
    errors,
    snapshots: snapshots.length,
    packs: index.packIds().length,
    unreferencedPacks: [...stored.keys()].filter((p) => index.packSize(p as PackId) === undefined).length,
  };
}

async function verifyPack(repository: Repository, pack: PackId): Promise<string | undefined> {
  try {
    const bytes = await repository.storage.get(blobNames.pack(pack));
    if (sha256Hex(bytes) !== pack) return 'content does not match its id (damaged)';
    for (const entry of readPackHeader(repository.keys.encryption, pack, bytes)) {
      const compressed = openRecord(
        repository.keys.encryption,
        entry.id,
        bytes.subarray(entry.offset, entry.offset + entry.length),
        pack,
      );
      const plain = await decompress(entry.codec, compressed, entry.rawLength);
      if (plain.length !== entry.rawLength) return `chunk ${entry.id.slice(0, 12)} has the wrong length`;
    }
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
