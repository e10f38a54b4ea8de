import { type BigIntStats, lstatSync, readdirSync } from 'node:fs';
import type { ChunkId } from './format.ts';
import { decodeName, decodeTree, type TreeEntry } from './tree.ts';

/**
 * What a backup reuses of its parent snapshot without reading: the tests on an entry's lstat (pure), and the scan
 * of a whole directory against its parent tree that a worker thread runs (unchanged-scanner.ts).
 */

/** The parent's content of a file when it is unchanged (same size, mtime, ctime and inode), else undefined. */
export function unchangedContent(stat: BigIntStats, previous: TreeEntry | undefined): ChunkId[] | undefined {
  return previous?.type === 'file' &&
    previous.content &&
    previous.size === Number(stat.size) &&
    previous.mtimeNs === stat.mtimeNs.toString() &&
    previous.ctimeNs === stat.ctimeNs.toString() &&
    previous.inode === Number(stat.ino)
    ? previous.content
    : undefined;
}

/**
 * The parent's extended attributes of an entry when they are still its own: the same ctime (setting or removing
 * one moves it: the test that reuses an unchanged file's content), type, and a file's inode. Only meaningful when
 * the parent read every attribute (see BackupRun.parentXattrsComplete).
 */
export function sameXattrs(stat: BigIntStats, previous: TreeEntry | undefined): TreeEntry['xattrs'] {
  if (
    previous?.ctimeNs === stat.ctimeNs.toString() &&
    previous.type === (stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : 'file') &&
    (previous.type !== 'file' || previous.inode === Number(stat.ino))
  )
    return previous.xattrs ?? [];
  return undefined;
}

/**
 * The keys of a reused file's entry, in the order the walk builds them (which fixes the tree's bytes); with
 * `xattrs` after `gid` when there are any.
 */
const FILE_KEYS = ['name', 'mode', 'mtimeNs', 'ctimeNs', 'uid', 'gid', 'type', 'atimeNs', 'size', 'inode', 'content'];
const FILE_KEYS_XATTRS = [...FILE_KEYS.slice(0, 6), 'xattrs', ...FILE_KEYS.slice(6)];

/**
 * Whether the parent's entry of a reused file (its content, type, size, times but atime, inode and extended
 * attributes already found the same) is the entry the walk would build, to the byte: the same remaining fields,
 * and exactly the keys it builds, in its order (an entry written otherwise is built anew).
 */
export function sameFileEntry(previous: TreeEntry, stat: BigIntStats): boolean {
  if (
    previous.mode !== Number(stat.mode & 0o7777n) ||
    previous.uid !== Number(stat.uid) ||
    previous.gid !== Number(stat.gid) ||
    previous.atimeNs !== stat.atimeNs.toString()
  )
    return false;
  const keys = previous.xattrs?.length ? FILE_KEYS_XATTRS : FILE_KEYS;
  let at = 0;
  for (const key in previous) if (keys[at++] !== key) return false;
  return at === keys.length;
}

/**
 * Whether the walk would take the parent's entry of a file as it is: a regular file not hard-linked (link numbers
 * are given in walk order), unchanged in content and extended attributes, and the same entry to the byte.
 */
export function reusedAsIs(stat: BigIntStats, previous: TreeEntry, xattrsComplete: boolean): boolean {
  return (
    stat.isFile() &&
    stat.nlink === 1n &&
    unchangedContent(stat, previous) !== undefined &&
    xattrsComplete &&
    sameXattrs(stat, previous) !== undefined &&
    sameFileEntry(previous, stat)
  );
}

/** A directory to scan: where it is listed and its names lstat-ed, and its tree in the parent snapshot. */
export interface ScanJob {
  /** The path its names are listed through (its descriptor's: source-directory.ts). */
  base: Uint8Array;
  /** Its real path: names are lstat-ed by path, as the walk does. */
  realPath: Uint8Array;
  /** Its path as the walk shows it ('' for the root), which exclusion patterns match. */
  display: string;
  /** Its tree in the parent snapshot, encoded. */
  parentTree: Uint8Array;
  /** Whether the parent snapshot read every extended attribute (else none is reused). */
  xattrsComplete: boolean;
}

/**
 * `unchanged`: every name not excluded is the parent tree's, in the same order, each file the parent's entry as it
 * is (`reusedAsIs`) and each directory still a directory (`subdirs`: their indices, walked as usual); the files'
 * count, bytes and chunks. Anything else (a name added, gone or changed, a symlink, an error) is `changed`: the
 * walk looks at every name itself.
 */
export type ScanResult =
  | { unchanged: false }
  | { unchanged: true; names: number; files: number; bytes: number; chunks: number; subdirs: number[] };

const CHANGED: ScanResult = { unchanged: false };
const SLASH = Buffer.from('/');

/** Scans one directory against its parent tree with synchronous calls (a worker thread's job). */
export function scanUnchanged(job: ScanJob, excluded: (relativePath: string) => boolean): ScanResult {
  let names: Buffer[];
  try {
    names = readdirSync(Buffer.from(job.base), { encoding: 'buffer' });
  } catch {
    return CHANGED;
  }
  names = names.sort(Buffer.compare).filter((name) => !excluded(`${job.display}/${name.toString('utf8')}`.slice(1)));
  const { entries } = decodeTree(Buffer.from(job.parentTree.buffer, job.parentTree.byteOffset, job.parentTree.length));
  if (names.length !== entries.length) return CHANGED;
  const realPath = Buffer.from(job.realPath);
  const result = {
    unchanged: true as const,
    names: names.length,
    files: 0,
    bytes: 0,
    chunks: 0,
    subdirs: [] as number[],
  };
  for (const [i, name] of names.entries()) {
    const previous = entries[i] as TreeEntry;
    if (!decodeName(previous).equals(name)) return CHANGED;
    let stat: BigIntStats;
    try {
      stat = lstatSync(Buffer.concat([realPath, SLASH, name]), { bigint: true });
    } catch {
      return CHANGED;
    }
    if (previous.type === 'dir' && stat.isDirectory()) result.subdirs.push(i);
    else if (previous.type === 'file' && reusedAsIs(stat, previous, job.xattrsComplete)) {
      result.files++;
      result.bytes += Number(stat.size);
      result.chunks += previous.content?.length ?? 0;
    } else return CHANGED;
  }
  return result;
}
