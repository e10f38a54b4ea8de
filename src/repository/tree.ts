import { TidemarkError } from '../errors.ts';
import type { ChunkId } from './format.ts';

/** The tree version writers write; readers read it and every older one (1: no `version` field). */
export const TREE_VERSION = 2;

/**
 * A directory, stored as a JSON chunk of type `tree`. Entries are sorted by name bytes. Names and
 * symlink targets that are not valid UTF-8 are stored base64-encoded (`nameB64`, `targetB64`), so
 * any name a filesystem allows round-trips byte for byte. Version 2 added `atimeNs`, `ctimeNs` and
 * `xattrs`; a version 1 entry has none of them.
 */
export interface TreeEntry {
  name?: string;
  nameB64?: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Modification time in nanoseconds since the epoch (negative before 1970), as a decimal string. */
  mtimeNs: string;
  /** Files: access time as found before the backup read the file, like mtimeNs (version 2). */
  atimeNs?: string;
  /** Status change time, like mtimeNs; compared to find changed files in the next incremental (version 2). */
  ctimeNs?: string;
  /** Extended attributes kept (see file-metadata.ts: `user.*`, POSIX ACLs), sorted by name (version 2). */
  xattrs?: { name: string; valueB64: string }[];
  uid: number;
  gid: number;
  /** Files: size in bytes and the chunk ids of the content, in order. */
  size?: number;
  content?: ChunkId[];
  /** Directories: the tree chunk id. */
  subtree?: ChunkId;
  target?: string;
  targetB64?: string;
  /**
   * Hard links: entries of one snapshot sharing a `link` number are one inode. The first in walk
   * order carries the content; restore links the others to it.
   */
  link?: number;
  /** Device and inode seen at backup, used to skip re-reading unchanged files in the next incremental. */
  inode?: number;
}

export interface Tree {
  /** Absent in version 1 trees. */
  version?: number;
  entries: TreeEntry[];
}

export function encodeName(name: Buffer): Pick<TreeEntry, 'name' | 'nameB64'> {
  const text = name.toString('utf8');
  return Buffer.from(text, 'utf8').equals(name) ? { name: text } : { nameB64: name.toString('base64') };
}

export function decodeName(entry: Pick<TreeEntry, 'name' | 'nameB64'>): Buffer {
  return entry.nameB64 !== undefined ? Buffer.from(entry.nameB64, 'base64') : Buffer.from(entry.name ?? '', 'utf8');
}

export function encodeTarget(target: Buffer): Pick<TreeEntry, 'target' | 'targetB64'> {
  const { name, nameB64 } = encodeName(target);
  return nameB64 !== undefined ? { targetB64: nameB64 } : { target: name };
}

export function decodeTarget(entry: TreeEntry): Buffer {
  return entry.targetB64 !== undefined
    ? Buffer.from(entry.targetB64, 'base64')
    : Buffer.from(entry.target ?? '', 'utf8');
}

/** Encodes as `tree.version`, else the current version (copy keeps a tree's version; backup writes the current). */
export function encodeTree(tree: Tree): Buffer {
  return Buffer.from(JSON.stringify({ version: tree.version ?? TREE_VERSION, entries: tree.entries }));
}

/** Reads any version up to the current one; a newer one is refused (`Unsupported`) rather than half-restored. */
export function decodeTree(data: Buffer): Tree {
  const tree = JSON.parse(data.toString('utf8')) as Tree;
  if ((tree.version ?? 1) > TREE_VERSION)
    throw new TidemarkError(
      'Unsupported',
      `tree version ${tree.version} is newer than this Tidemark reads (${TREE_VERSION}); upgrade Tidemark`,
    );
  return tree;
}
