import { lstat, readdir, readlink } from 'node:fs/promises';
import { TidemarkError } from '../errors.ts';
import type { ChunkStore } from './chunk-store.ts';
import type { ChunkId } from './format.ts';
import { globMatcher } from './glob.ts';
import { decodeName, decodeTarget, decodeTree, type TreeEntry } from './tree.ts';

/** A path listed by an audit, and for a changed one what changed. */
export interface ChangedFile {
  path: string;
  /** What differs: `type`, `size`, `mtime` or `target` (symlinks), comma-separated. */
  change: string;
}

/** A list cut to a bound, with how many there were. */
export interface Bounded<T> {
  items: T[];
  total: number;
}

export interface TreeAudit {
  /** Files and symlinks found live (directories are not counted). */
  liveFiles: number;
  /** Live files the backup does not hold (created since, or skipped by it). */
  missing: Bounded<string>;
  /** Files the backup holds that are gone. */
  removed: Bounded<string>;
  /** Files in both whose type, size, mtime or link target differ. */
  changed: Bounded<ChangedFile>;
}

const push = <T>(list: Bounded<T>, item: T, limit: number) => {
  list.total++;
  if (list.items.length < limit) list.items.push(item);
};

/**
 * Compares a live directory tree (`root`, read only: lstat, readdir, readlink) with a snapshot's tree
 * (`rootTree`), walking both in name order at once. Paths the source's `excludes` leave out of
 * backups are left out on both sides. Lists keep their first `limit` paths; totals count them all.
 */
export async function auditTree(
  store: ChunkStore,
  rootTree: ChunkId,
  root: string,
  options: { excludes?: string[]; limit?: number } = {},
): Promise<TreeAudit> {
  const limit = options.limit ?? 1000;
  const excluded = globMatcher(options.excludes ?? []);
  const audit: TreeAudit = {
    liveFiles: 0,
    missing: { items: [], total: 0 },
    removed: { items: [], total: 0 },
    changed: { items: [], total: 0 },
  };
  const snapshotEntries = async (tree: ChunkId | undefined) =>
    tree ? decodeTree(await store.get(tree)).entries : ([] as TreeEntry[]);

  const liveOnly = async (path: Buffer, display: string, isDir: boolean): Promise<void> => {
    if (!isDir) {
      audit.liveFiles++;
      return push(audit.missing, display, limit);
    }
    for (const { name, dir } of await liveEntries(path, display))
      await liveOnly(Buffer.concat([path, Buffer.from('/'), name]), `${display}/${name.toString('utf8')}`, dir);
  };
  const snapshotOnly = async (entry: TreeEntry, display: string): Promise<void> => {
    if (entry.type !== 'dir') return push(audit.removed, display, limit);
    for (const child of await snapshotEntries(entry.subtree)) {
      const childDisplay = `${display}/${decodeName(child).toString('utf8')}`;
      if (!excluded(childDisplay.slice(1))) await snapshotOnly(child, childDisplay);
    }
  };
  const liveEntries = async (path: Buffer, display: string) => {
    const names = ((await unlessVanished(readdir(path, { encoding: 'buffer' }), path)) ?? []).sort(Buffer.compare);
    const entries: { name: Buffer; dir: boolean }[] = [];
    for (const name of names) {
      if (excluded(`${display}/${name.toString('utf8')}`.slice(1))) continue;
      const child = Buffer.concat([path, Buffer.from('/'), name]);
      const stat = await unlessVanished(lstat(child), child);
      if (stat) entries.push({ name, dir: stat.isDirectory() });
    }
    return entries;
  };

  const directory = async (path: Buffer, display: string, tree: ChunkId | undefined): Promise<void> => {
    const live = await liveEntries(path, display);
    const backed = (await snapshotEntries(tree)).filter(
      (e) => !excluded(`${display}/${decodeName(e).toString('utf8')}`.slice(1)),
    );
    let i = 0;
    let j = 0;
    while (i < live.length || j < backed.length) {
      const l = live[i];
      const b = backed[j];
      const order = !l ? 1 : !b ? -1 : Buffer.compare(l.name, decodeName(b));
      const name = order <= 0 ? (l as { name: Buffer }).name : decodeName(b as TreeEntry);
      const childPath = Buffer.concat([path, Buffer.from('/'), name]);
      const childDisplay = `${display}/${name.toString('utf8')}`;
      if (order < 0 && l) await liveOnly(childPath, childDisplay, l.dir);
      else if (order > 0 && b) await snapshotOnly(b, childDisplay);
      else if (l && b) {
        if (l.dir && b.type === 'dir') await directory(childPath, childDisplay, b.subtree);
        else if (l.dir || b.type === 'dir') {
          await snapshotOnly(b, childDisplay);
          await liveOnly(childPath, childDisplay, l.dir);
        } else await file(childPath, childDisplay, b);
      }
      if (order <= 0) i++;
      if (order >= 0) j++;
    }
  };

  const file = async (path: Buffer, display: string, entry: TreeEntry): Promise<void> => {
    const stat = await unlessVanished(lstat(path, { bigint: true }), path);
    if (!stat) return push(audit.removed, display, limit);
    audit.liveFiles++;
    const changes: string[] = [];
    const type = stat.isSymbolicLink() ? 'symlink' : stat.isFile() ? 'file' : 'other';
    if (type !== entry.type) changes.push('type');
    else if (type === 'file') {
      if (BigInt(entry.size ?? 0) !== stat.size) changes.push('size');
      if (entry.mtimeNs !== stat.mtimeNs.toString()) changes.push('mtime');
    } else if (!(await readlink(path, { encoding: 'buffer' })).equals(decodeTarget(entry))) changes.push('target');
    if (changes.length) push(audit.changed, { path: display, change: changes.join(',') }, limit);
  };

  const top = await lstat(root).catch((error: unknown) => {
    throw new TidemarkError('SourceUnavailable', `cannot read ${root}: ${(error as Error).message}`, { cause: error });
  });
  if (!top.isDirectory()) throw new TidemarkError('InvalidArgument', `${root} is not a directory`);
  await directory(Buffer.from(root), '', rootTree);
  return audit;
}

/** A path gone while the audit walks it (the source is live) is simply not there; any other failure fails the audit. */
async function unlessVanished<T>(reading: Promise<T>, path: Buffer): Promise<T | undefined> {
  try {
    return await reading;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TidemarkError('SourceUnavailable', `cannot read ${path.toString('utf8')}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
