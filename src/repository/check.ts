import { TidemarkError } from '../errors.ts';
import { blobNames, type ChunkId, idOf, type PackId, prefixes, sha256Hex } from './format.ts';
import { findCrashLeftovers } from './housekeeping.ts';
import { decodeRecord, type PackEntry, readPackHeader } from './pack.ts';
import { type ProgressListener, ProgressMeter } from './progress.ts';
import { readStoredPackHeader } from './repair.ts';
import { mapLimit, type Repository } from './repository.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeName, decodeTree, type TreeEntry } from './tree.ts';
import { walkTrees } from './walk.ts';

/** One object that is damaged or missing, and the snapshots that need it. */
export interface DamagedObjectReport {
  object: string;
  reason: string;
  snapshots: string[];
}

/** A snapshot that does not restore in full: the paths lost, and those `repo repair index` brings back. */
export interface AffectedSnapshot {
  snapshot: string;
  source: string;
  time: string;
  /** Files that cannot be restored; a path ending in `/` is a whole directory (`/` the whole snapshot). */
  lost: string[];
  recoverable: string[];
}

export interface CheckReport {
  /** Every problem, one line each, naming the object and the snapshots that need it. */
  errors: string[];
  /** Snapshots that read (damaged snapshot blobs are in `damaged`). */
  snapshots: number;
  packs: number;
  /** Packs no index lists and no snapshot needs (interrupted backups): safe to delete, `prune` removes them. */
  unreferencedPacks: number;
  /** Packs no index lists that hold chunks snapshots need: `repo repair index` lists them again. Never pruned. */
  packsToReindex: string[];
  damaged: DamagedObjectReport[];
  affected: AffectedSnapshot[];
  /** Leftovers of crashed writers (not errors): the next `prune` or `repo unlock --remove-stale` removes them. */
  leftovers: { tempBlobs: string[]; staleLocks: string[] };
}

/** A chunk a snapshot needs that cannot be read, and where (a path relative to the tree it was found in). */
interface Problem {
  path: string;
  chunk: ChunkId;
  /** The damaged or missing object: a pack, an index file, or the chunk itself. */
  object: string;
  reason: string;
}

/**
 * Checks structure: every indexed pack exists with its size, every index file and snapshot reads, every
 * snapshot's trees decrypt and every chunk they reference is indexed. With `readData`, also downloads every
 * pack and verifies its hash, header and every record. Damage is reported with the snapshots and paths it
 * affects; a damaged object never stops the check of the rest. Packs in no index are called safe to
 * delete only when they hold nothing a snapshot lacks.
 */
export async function check(
  repository: Repository,
  options: { readData?: boolean; onProgress?: ProgressListener } = {},
): Promise<CheckReport> {
  const stored = new Map<PackId, number>();
  for await (const blob of repository.storage.list(prefixes.data)) stored.set(idOf(blob.name) as PackId, blob.size);
  const damage = await packDamage(repository, stored, options);
  const listing = await repository.snapshotListing();
  const walker = new DamageWalker(repository, damage);
  const problemsOf = new Map<Snapshot, Problem[]>();
  for (const snapshot of listing.snapshots) {
    const problems = await walker.problems(snapshot.root);
    if (problems.length) problemsOf.set(snapshot, problems);
  }
  // A chunk whose indexed copy is damaged is left out: a rebuilt index might still pick that copy.
  const lacking = new Set(
    [...problemsOf.values()].flatMap((ps) => ps.map((p) => p.chunk)).filter((c) => !damage.chunks.has(c)),
  );
  const unreferenced = [...stored.keys()].filter((p) => repository.index.packSize(p) === undefined);
  const reindex = await findReindexable(repository, stored, unreferenced, lacking);

  const objectSnapshots = new Map<string, Set<string>>();
  const affected: AffectedSnapshot[] = [];
  for (const [snapshot, problems] of problemsOf) {
    const lost = new Set<string>();
    const back = new Set<string>();
    for (const problem of problems) {
      (reindex.recoverable.has(problem.chunk) ? back : lost).add(problem.path);
      const set = objectSnapshots.get(problem.object) ?? new Set();
      set.add(snapshot.id);
      objectSnapshots.set(problem.object, set);
    }
    const { id, source, time } = snapshot;
    affected.push({ snapshot: id, source, time, lost: [...lost], recoverable: [...back] });
  }
  const needing = (object: string) => [...(objectSnapshots.get(object) ?? [])].sort();
  const damaged = [...damage.headers, ...reindex.unreadable.values()];
  for (const file of repository.damagedIndexFiles)
    damaged.push({ object: file.name, reason: file.reason, snapshots: needing('index') });
  if (repository.damagedIndexFiles.length === 0 && needing('index').length)
    damaged.push({
      object: 'index',
      reason: 'chunks that snapshots reference are in no index',
      snapshots: needing('index'),
    });
  for (const file of listing.damaged)
    damaged.push({ object: file.name, reason: file.reason, snapshots: [idOf(file.name)] });
  for (const [pack, reason] of damage.packs)
    damaged.push({ object: blobNames.pack(pack), reason, snapshots: needing(blobNames.pack(pack)) });
  const reasonsByPack = new Map<PackId, string[]>();
  for (const [chunk, reason] of damage.chunks) {
    const pack = repository.index.get(chunk)?.pack as PackId;
    reasonsByPack.set(pack, [...(reasonsByPack.get(pack) ?? []), reason]);
  }
  for (const [pack, reasons] of reasonsByPack)
    damaged.push({
      object: blobNames.pack(pack),
      reason: `${reasons.length} damaged chunk(s): ${reasons.join('; ')}`,
      snapshots: needing(blobNames.pack(pack)),
    });

  const leftovers = await findCrashLeftovers(repository.storage);
  return {
    errors: describe(damaged, affected, [...reindex.packs], listing.snapshots.length),
    snapshots: listing.snapshots.length,
    packs: repository.index.packIds().length,
    unreferencedPacks: unreferenced.filter((p) => !reindex.packs.has(p) && !reindex.unreadable.has(p)).length,
    packsToReindex: [...reindex.packs].sort(),
    damaged,
    affected,
    leftovers: {
      tempBlobs: leftovers.tempBlobs.map((t) => `${t.name} (${t.size} bytes, ${t.modified})`),
      staleLocks: leftovers.staleLocks.map((l) => `${l.name}: ${l.reason}`),
    },
  };
}

/** Indexed packs that cannot be read whole, single chunks that do not decrypt, and damaged headers. */
interface PackDamage {
  packs: Map<PackId, string>;
  /** Also trees that fail to read while the snapshots are walked. */
  chunks: Map<ChunkId, string>;
  headers: DamagedObjectReport[];
}

/** Missing and wrongly sized packs; with `readData`, every record and header of the others. */
async function packDamage(
  repository: Repository,
  stored: Map<PackId, number>,
  options: { readData?: boolean; onProgress?: ProgressListener },
): Promise<PackDamage> {
  const index = repository.index;
  const damage: PackDamage = { packs: new Map(), chunks: new Map(), headers: [] };
  for (const pack of index.packIds()) {
    const size = stored.get(pack);
    if (size === undefined) damage.packs.set(pack, `missing from ${repository.storage.description}`);
    else if (size !== index.packSize(pack))
      damage.packs.set(pack, `has ${size} bytes, the index says ${index.packSize(pack)}`);
  }
  if (!options.readData) return damage;
  const verify = index.packIds().filter((p) => !damage.packs.has(p));
  const total = verify.reduce((sum, p) => sum + (stored.get(p) ?? 0), 0);
  const meter = new ProgressMeter('check', options.onProgress, total);
  await mapLimit(verify, 4, async (pack) => {
    const result = await verifyPack(repository, pack);
    meter.add(stored.get(pack) ?? 0, 1);
    if (result.pack) damage.packs.set(pack, result.pack);
    for (const [chunk, reason] of result.chunks) damage.chunks.set(chunk, reason);
    if (result.header) damage.headers.push({ object: blobNames.pack(pack), reason: result.header, snapshots: [] });
  });
  meter.done();
  return damage;
}

/**
 * Which packs no index lists hold chunks snapshots lack (a deleted or damaged index file): those are to be
 * re-indexed, never deleted. Headers are read only when something is lacking. A lacking tree found there is read
 * from that pack, and what it references that no index lists is lacking too: trees and file data are in packs of
 * their own, so the data of a snapshot whose index file is gone is found only below its trees.
 */
async function findReindexable(
  repository: Repository,
  stored: Map<PackId, number>,
  unreferenced: PackId[],
  lacking: Set<ChunkId>,
): Promise<{ packs: Set<PackId>; recoverable: Set<ChunkId>; unreadable: Map<PackId, DamagedObjectReport> }> {
  const found = { packs: new Set<PackId>(), recoverable: new Set<ChunkId>(), unreadable: new Map() };
  if (lacking.size === 0) return found;
  const key = repository.keys.encryption;
  const unindexed = new Map<ChunkId, { pack: PackId; entry: PackEntry }>();
  await mapLimit(unreferenced, 8, async (pack) => {
    try {
      for (const entry of await readStoredPackHeader(repository.storage, key, pack, stored.get(pack) ?? 0))
        unindexed.set(entry.id, { pack, entry });
    } catch (error) {
      const reason = `in no index, and ${(error as Error).message}`;
      found.unreadable.set(pack, { object: blobNames.pack(pack), reason, snapshots: [] });
    }
  });
  const queue = [...lacking];
  const seen = new Set(queue);
  for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
    const at = unindexed.get(id);
    if (!at) continue;
    found.recoverable.add(id);
    found.packs.add(at.pack);
    if (at.entry.type !== 'tree') continue;
    let entries: TreeEntry[];
    try {
      const { pack, entry } = at;
      const record = await repository.storage.get(blobNames.pack(pack), { offset: entry.offset, length: entry.length });
      entries = decodeTree(await decodeRecord(key, id, entry, record, pack)).entries;
    } catch {
      continue; // what is below it stays unknown; re-indexing its pack is still what brings it back
    }
    for (const entry of entries)
      for (const below of [...(entry.subtree ? [entry.subtree] : []), ...(entry.content ?? [])])
        if (!seen.has(below) && !repository.index.has(below)) {
          seen.add(below);
          queue.push(below);
        }
  }
  return found;
}

/**
 * The chunks the snapshots use (prune keeps these and deletes every pack its new index does not list). That
 * is safe only when the index is whole and every chunk in use is in a pack that exists, so this refuses
 * (Corrupt) when an index file, a snapshot or a tree cannot be read, or a chunk in use is in no index or
 * in a pack that is missing or not the size the index says: a pack no index lists may hold the only copy of a
 * snapshot's data, and a damaged one is for `check` and `repair` to look at, not for a prune to repack.
 */
export async function chunksInUse(repository: Repository): Promise<Set<ChunkId>> {
  const problems = repository.damagedIndexFiles.map((d) => `${d.name} cannot be read`);
  const listing = await repository.snapshotListing();
  for (const d of listing.damaged) problems.push(`${d.name} cannot be read`);
  const used = new Set<ChunkId>();
  if (problems.length === 0) {
    const store = repository.chunkStore();
    const seen = new Set<ChunkId>();
    for (const snapshot of listing.snapshots) {
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
      ).catch((error: unknown) => problems.push(`snapshot ${snapshot.id}: ${(error as Error).message}`));
    }
    const stored = new Map<string, number>();
    for await (const blob of repository.storage.list(prefixes.data)) stored.set(idOf(blob.name), blob.size);
    let inNoIndex = 0;
    const damaged = new Map<PackId, string>();
    for (const chunk of used) {
      const at = repository.index.get(chunk);
      if (!at) inNoIndex++;
      else if (damaged.has(at.pack)) continue;
      else if (!stored.has(at.pack)) damaged.set(at.pack, 'is missing');
      else if (stored.get(at.pack) !== repository.index.packSize(at.pack))
        damaged.set(at.pack, `has ${stored.get(at.pack)} bytes, the index says ${repository.index.packSize(at.pack)}`);
    }
    if (inNoIndex) problems.push(`${inNoIndex} chunk(s) that snapshots use are in no index`);
    for (const [pack, reason] of damaged) problems.push(`pack ${pack} ${reason}`);
  }
  if (problems.length)
    throw new TidemarkError(
      'Corrupt',
      `prune refused on ${repository.storage.description}: ${problems.join('; ')}. Deleting now could remove the only copy of data: run \`tidemark repo check\`, then \`tidemark repo repair index\` to list packs no index lists, and forget the snapshots it names as lost`,
    );
  return used;
}

const NO_PROBLEMS: Problem[] = [];

/** Walks a snapshot's trees collecting what cannot be read; a damaged tree hides only what is below it. */
class DamageWalker {
  /** Problems per tree, paths relative to it: trees shared by snapshots are read once. */
  private readonly cache = new Map<ChunkId, Problem[]>();
  private readonly store;

  constructor(
    private readonly repository: Repository,
    private readonly damage: PackDamage,
  ) {
    this.store = repository.chunkStore();
  }

  /** The problems of a snapshot, with paths from its root (`/`). */
  async problems(root: ChunkId): Promise<Problem[]> {
    return (await this.tree(root)).map((p) => ({ ...p, path: `/${p.path}` }));
  }

  private async tree(id: ChunkId): Promise<Problem[]> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    let problems: Problem[] = [];
    const whole = this.unavailable(id);
    if (whole) problems.push({ path: '', chunk: id, ...whole });
    else {
      try {
        for (const entry of decodeTree(await this.store.get(id)).entries) {
          const name = decodeName(entry).toString('utf8');
          if (entry.type === 'dir' && entry.subtree)
            for (const p of await this.tree(entry.subtree)) problems.push({ ...p, path: `${name}/${p.path}` });
          for (const chunk of entry.content ?? []) {
            const problem = this.unavailable(chunk);
            if (problem) problems.push({ path: name, chunk, ...problem });
          }
        }
      } catch (error) {
        // Damage a structural check finds without --read-data: the tree counts as a damaged chunk.
        this.damage.chunks.set(id, (error as Error).message);
        problems.push({ path: '', chunk: id, ...(this.unavailable(id) as Omit<Problem, 'path' | 'chunk'>) });
      }
    }
    if (problems.length === 0) problems = NO_PROBLEMS; // most trees: one shared array, not one each
    this.cache.set(id, problems);
    return problems;
  }

  private unavailable(chunk: ChunkId): Omit<Problem, 'path' | 'chunk'> | undefined {
    const at = this.repository.index.get(chunk);
    if (!at) {
      const hint = this.repository.damagedIndexFiles.length ? ' (an index file is damaged)' : '';
      return { object: 'index', reason: `chunk ${chunk.slice(0, 12)} is in no index${hint}` };
    }
    const problem = this.damage.packs.get(at.pack) ?? this.damage.chunks.get(chunk);
    return problem ? { object: blobNames.pack(at.pack), reason: problem } : undefined;
  }
}

/** Downloads a pack and verifies its hash, its header, and each record the index locates in it. */
async function verifyPack(
  repository: Repository,
  pack: PackId,
): Promise<{ pack?: string; header?: string; chunks: Map<ChunkId, string> }> {
  const chunks = new Map<ChunkId, string>();
  let bytes: Buffer;
  try {
    bytes = await repository.storage.get(blobNames.pack(pack));
  } catch (error) {
    return { pack: (error as Error).message, chunks };
  }
  const key = repository.keys.encryption;
  for (const chunk of repository.index.chunksOf(pack)) {
    const at = repository.index.get(chunk);
    if (at?.pack !== pack) continue; // read from another pack
    try {
      const plain = await decodeRecord(key, chunk, at, bytes.subarray(at.offset, at.offset + at.length), pack);
      if (plain.length !== at.rawLength) chunks.set(chunk, `chunk ${chunk.slice(0, 12)} has the wrong length`);
    } catch (error) {
      chunks.set(chunk, (error as Error).message);
    }
  }
  let header: string | undefined;
  try {
    readPackHeader(key, pack, bytes);
  } catch (error) {
    header = `header: ${(error as Error).message} (the index still locates its chunks; \`repo repair index\` cannot rebuild from it)`;
  }
  if (!header && chunks.size === 0 && sha256Hex(bytes) !== pack)
    return { pack: 'content does not match its id (damaged)', chunks };
  return { chunks, ...(header ? { header } : {}) };
}

function describe(
  damaged: DamagedObjectReport[],
  affected: AffectedSnapshot[],
  packsToReindex: string[],
  readable: number,
): string[] {
  const lines = damaged.map(
    (d) => `${d.object}: ${d.reason}${d.snapshots.length ? `; needed by snapshot(s) ${d.snapshots.join(', ')}` : ''}`,
  );
  for (const a of affected) {
    const parts = [];
    if (a.lost.length) parts.push(`${a.lost.length} path(s) cannot be restored: ${sample(a.lost)}`);
    if (a.recoverable.length)
      parts.push(
        `${a.recoverable.length} path(s) come back with \`tidemark repo repair index\`: ${sample(a.recoverable)}`,
      );
    lines.push(`snapshot ${a.snapshot} (${a.source}, ${a.time}): ${parts.join('; ')}`);
  }
  if (packsToReindex.length)
    lines.push(
      `${packsToReindex.length} pack(s) in no index hold data snapshots need (not removable; run \`tidemark repo repair index\`): ${sample(packsToReindex)}`,
    );
  if (lines.length) lines.push(`${readable - affected.length} other snapshot(s) are intact`);
  return lines;
}

function sample(items: string[]): string {
  return items.length > 5 ? `${items.slice(0, 5).join(', ')} and ${items.length - 5} more` : items.join(', ');
}
