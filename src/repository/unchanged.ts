import { type BigIntStats, constants, lstatSync, readdirSync } from 'node:fs';
import type { ChunkId } from './format.ts';
import { decodeName, decodeTree, type TreeEntry } from './tree.ts';

/**
 * What a backup reuses of its parent snapshot without reading: the tests on an entry's lstat (pure), and the scan
 * of a whole directory against its parent tree that a worker thread runs (unchanged-scanner.ts).
 */

/** What the tests below read of an lstat: a BigIntStats, or a name's stats in a `Listing`. */
export type StatLike = Pick<
  BigIntStats,
  | 'isFile'
  | 'isDirectory'
  | 'isSymbolicLink'
  | 'mode'
  | 'nlink'
  | 'size'
  | 'ino'
  | 'uid'
  | 'gid'
  | 'mtimeNs'
  | 'ctimeNs'
  | 'atimeNs'
>;

/** The parent's content of a file when it is unchanged (same size, mtime, ctime and inode), else undefined. */
export function unchangedContent(stat: StatLike, previous: TreeEntry | undefined): ChunkId[] | undefined {
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
export function sameXattrs(stat: StatLike, previous: TreeEntry | undefined): TreeEntry['xattrs'] {
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
export function sameFileEntry(previous: TreeEntry, stat: StatLike): boolean {
  if (
    previous.mode !== Number(stat.mode & 0o7777n) ||
    previous.uid !== Number(stat.uid) ||
    previous.gid !== Number(stat.gid) ||
    previous.atimeNs !== stat.atimeNs.toString()
  )
    return false;
  const keys = previous.xattrs?.length ? FILE_KEYS_XATTRS : FILE_KEYS;
  let at = 0;
  for (const key in previous) {
    // A name that is not UTF-8 is stored as nameB64, in name's place.
    const expected = at === 0 && key === 'nameB64' ? 'name' : key;
    if (keys[at++] !== expected) return false;
  }
  return at === keys.length;
}

/**
 * Whether the walk would take the parent's entry of a file as it is: a regular file not hard-linked (link numbers
 * are given in walk order), unchanged in content and extended attributes, and the same entry to the byte.
 */
export function reusedAsIs(stat: StatLike, previous: TreeEntry): boolean {
  return (
    stat.isFile() &&
    stat.nlink === 1n &&
    unchangedContent(stat, previous) !== undefined &&
    sameXattrs(stat, previous) !== undefined &&
    sameFileEntry(previous, stat)
  );
}

/**
 * A directory's names, sorted by their bytes and without those excluded, as latin1 strings (one character per byte,
 * so any name is its own string and sorts as its bytes), and their lstats packed (STAT_FIELDS each: see `statAt`);
 * `failed`: the listing or an lstat failed. Made by a scan, or ahead of it by the prescan of the same worker
 * (unchanged-scan-worker.ts); stats packed, because a prescan holds up to 100,000 names' worth.
 */
export interface Listing {
  names: string[];
  stats: BigInt64Array;
  failed: boolean;
}

const STAT_FIELDS = 9;
const failedListing = (): Listing => ({ names: [], stats: new BigInt64Array(0), failed: true });
const NOT_ASCII = /[\u0080-\uffff]/;
const isAscii = (text: string): boolean => !NOT_ASCII.test(text);

/** A latin1 string as its bytes' UTF-8 text (the same string when ASCII, as almost every name is). */
const utf8Of = (latin1: string): string => (isAscii(latin1) ? latin1 : Buffer.from(latin1, 'latin1').toString('utf8'));

/**
 * Lists a directory (through `base`) and lstats its names (by `realPath`, as the walk does) with synchronous
 * calls; `display` is its path as the walk shows it ('' for the root), which exclusion patterns match. A path
 * whose bytes are ASCII is passed as a string (Node converts a Buffer path on every call, a third of an lstat).
 */
export function listDirectory(
  base: Buffer,
  realPath: Buffer,
  display: string,
  excluded: (relativePath: string) => boolean,
): Listing {
  let names: string[];
  try {
    names = readdirSync(base, { encoding: 'latin1' });
  } catch {
    return failedListing();
  }
  names = names.sort().filter((name) => !excluded(`${display}/${utf8Of(name)}`.slice(1)));
  const prefix = `${realPath.toString('latin1')}/`;
  const asciiPrefix = isAscii(prefix);
  const stats = new BigInt64Array(names.length * STAT_FIELDS);
  for (const [i, name] of names.entries()) {
    const path = prefix + name;
    let stat: BigIntStats;
    try {
      stat = lstatSync(asciiPrefix && isAscii(name) ? path : Buffer.from(path, 'latin1'), { bigint: true });
    } catch {
      return failedListing();
    }
    const at = i * STAT_FIELDS;
    stats[at] = stat.mode;
    stats[at + 1] = stat.nlink;
    stats[at + 2] = stat.size;
    stats[at + 3] = stat.ino;
    stats[at + 4] = stat.uid;
    stats[at + 5] = stat.gid;
    stats[at + 6] = stat.mtimeNs;
    stats[at + 7] = stat.ctimeNs;
    stats[at + 8] = stat.atimeNs;
  }
  return { names, stats, failed: false };
}

/** Name `i` of a listing, as its bytes. */
export function nameAt(listing: Listing, i: number): Buffer {
  return Buffer.from(listing.names[i] as string, 'latin1');
}

/** The lstat of name `i` of a listing. */
export function statAt(listing: Listing, i: number): StatLike {
  const at = i * STAT_FIELDS;
  const field = (k: number) => listing.stats[at + k] as bigint;
  const type = field(0) & BigInt(constants.S_IFMT);
  return {
    mode: field(0),
    nlink: field(1),
    size: field(2),
    ino: field(3),
    uid: field(4),
    gid: field(5),
    mtimeNs: field(6),
    ctimeNs: field(7),
    atimeNs: field(8),
    isFile: () => type === BigInt(constants.S_IFREG),
    isDirectory: () => type === BigInt(constants.S_IFDIR),
    isSymbolicLink: () => type === BigInt(constants.S_IFLNK),
  };
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
  /** The directory as a prescan listed it (else the scan lists it). */
  listing?: Listing;
}

/**
 * `unchanged`: every name not excluded is the parent tree's, in the same order, each file the parent's entry as it
 * is (`reusedAsIs`) and each directory still a directory (`subdirs`: their indices, walked as usual); the files'
 * count, bytes and chunks. Anything else (a name added, gone or changed, a symlink, an error) is `changed`: the
 * walk looks at every name itself.
 */
export type ScanResult =
  | { unchanged: false }
  | { unchanged: true; files: number; bytes: number; chunks: number; subdirs: number[] };

const CHANGED: ScanResult = { unchanged: false };

/** An entry's name as a latin1 string of its bytes (see `Listing`). */
function latin1Name(entry: TreeEntry): string {
  return entry.name !== undefined && isAscii(entry.name) ? entry.name : decodeName(entry).toString('latin1');
}

/** Scans one directory against its parent tree (a worker thread's job). */
export function scanUnchanged(job: ScanJob, excluded: (relativePath: string) => boolean): ScanResult {
  const listing = job.listing ?? listDirectory(Buffer.from(job.base), Buffer.from(job.realPath), job.display, excluded);
  if (listing.failed) return CHANGED;
  const { entries } = decodeTree(Buffer.from(job.parentTree.buffer, job.parentTree.byteOffset, job.parentTree.length));
  if (listing.names.length !== entries.length) return CHANGED;
  const result = {
    unchanged: true as const,
    files: 0,
    bytes: 0,
    chunks: 0,
    subdirs: [] as number[],
  };
  for (const [i, previous] of entries.entries()) {
    if (latin1Name(previous) !== listing.names[i]) return CHANGED;
    const stat = statAt(listing, i);
    if (previous.type === 'dir' && stat.isDirectory()) result.subdirs.push(i);
    else if (previous.type === 'file' && reusedAsIs(stat, previous)) {
      result.files++;
      result.bytes += Number(stat.size);
      result.chunks += previous.content?.length ?? 0;
    } else return CHANGED;
  }
  return result;
}
