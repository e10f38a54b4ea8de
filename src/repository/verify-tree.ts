import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { ChunkStore } from './chunk-store.ts';
import { chunkStream } from './chunker/fastcdc.ts';
import type { ChainId, ChunkId } from './format.ts';
import type { Repository } from './repository.ts';
import { underLock } from './restore.ts';
import type { Snapshot } from './snapshot.ts';
import { decodeName, decodeTarget, decodeTree, type TreeEntry } from './tree.ts';

/** A path of the restored tree (`/dir/file`, relative to it) that does not match the snapshot, and how. */
export interface TreeMismatch {
  path: string;
  reason: string;
}

export interface TreeVerification {
  /** Entries of the snapshot checked: regular files (hard links included), directories, symlinks. */
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of file content re-read. */
  bytes: number;
  /** How many paths do not match, of any kind; `mismatches` holds the first `limit` of them. */
  mismatchCount: number;
  mismatches: TreeMismatch[];
}

/**
 * Re-reads a tree restored from `snapshot` into `dir` and compares it with the snapshot: every
 * directory, file and symlink is there with its type; a file has its size, and its content cut by the
 * repository's chunker and hashed with its chunk-id key gives the chunk ids the snapshot lists; a
 * symlink has its target; hard links of one inode share it; nothing is there that the snapshot lacks.
 * Metadata (owner, mode, times, extended attributes) is not compared: restore reports what the target
 * refused. Reads trees under a shared lock, like a restore.
 */
export async function verifyRestoredTree(
  repository: Repository,
  snapshot: Snapshot,
  dir: string,
  options: { limit?: number } = {},
): Promise<TreeVerification> {
  return underLock(repository, snapshot, async () => {
    const check = new TreeCheck(repository, snapshot.chainId, options.limit ?? 100);
    await check.directory(snapshot.root, Buffer.from(dir), '');
    return check.result;
  });
}

class TreeCheck {
  readonly result: TreeVerification = { files: 0, dirs: 0, symlinks: 0, bytes: 0, mismatchCount: 0, mismatches: [] };
  private readonly store: ChunkStore;
  /** Hard-link groups: the inode of the first name restored. */
  private readonly links = new Map<number, { dev: bigint; ino: bigint }>();

  constructor(
    private readonly repository: Repository,
    private readonly chain: ChainId,
    private readonly limit: number,
  ) {
    this.store = repository.chunkStore();
  }

  async directory(treeId: ChunkId, path: Buffer, display: string): Promise<void> {
    this.result.dirs++;
    const { entries } = decodeTree(await this.store.get(treeId));
    const expected = new Set(entries.map((e) => decodeName(e).toString('hex')));
    let present: Buffer[];
    try {
      present = await readdir(path, { encoding: 'buffer' });
    } catch (error) {
      this.mismatch(display || '/', `directory unreadable (${(error as NodeJS.ErrnoException).code})`);
      return;
    }
    for (const name of present)
      if (!expected.has(name.toString('hex')))
        this.mismatch(`${display}/${name.toString('utf8')}`, 'not in the snapshot');
    const found = new Set(present.map((name) => name.toString('hex')));
    for (const entry of entries) {
      const name = decodeName(entry);
      const child = Buffer.concat([path, Buffer.from('/'), name]);
      const childDisplay = `${display}/${name.toString('utf8')}`;
      if (!found.has(name.toString('hex'))) this.mismatch(childDisplay, `${entry.type} missing`);
      else await this.entry(entry, child, childDisplay);
    }
  }

  private async entry(entry: TreeEntry, path: Buffer, display: string): Promise<void> {
    const stat = await lstat(path, { bigint: true });
    const type = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : stat.isFile() ? 'file' : 'other';
    if (type !== entry.type) {
      this.mismatch(display, `a ${type}, the snapshot has a ${entry.type}`);
      return;
    }
    if (entry.type === 'dir') {
      await this.directory(entry.subtree as ChunkId, path, display);
      return;
    }
    if (entry.type === 'symlink') {
      this.result.symlinks++;
      if (!(await readlink(path, { encoding: 'buffer' })).equals(decodeTarget(entry)))
        this.mismatch(display, 'symlink target differs');
      return;
    }
    this.result.files++;
    const first = entry.link === undefined ? undefined : this.links.get(entry.link);
    if (first) {
      if (first.dev !== stat.dev || first.ino !== stat.ino) this.mismatch(display, 'not a hard link of its group');
      return;
    }
    if (entry.link !== undefined) this.links.set(entry.link, { dev: stat.dev, ino: stat.ino });
    const size = Number(stat.size);
    if (size !== (entry.size ?? 0)) {
      this.mismatch(display, `${size} bytes, ${entry.size ?? 0} in the snapshot`);
      return;
    }
    const differs = await this.contentDiffers(path, entry.content ?? []);
    this.result.bytes += size;
    if (differs !== undefined) this.mismatch(display, differs);
  }

  /** Where the content first differs from the snapshot's chunk ids, or undefined. */
  private async contentDiffers(path: Buffer, content: ChunkId[]): Promise<string | undefined> {
    const { chunker } = this.repository.config;
    let index = 0;
    let offset = 0;
    const stream = createReadStream(path);
    try {
      for await (const chunk of chunkStream(stream, { seed: this.repository.keys.chunkerSeed, ...chunker })) {
        if (this.store.chunkId(this.chain, chunk) !== content[index])
          return `content differs from the snapshot in bytes ${offset}..${offset + chunk.length}`;
        index++;
        offset += chunk.length;
      }
    } finally {
      stream.destroy();
    }
    return index === content.length ? undefined : 'content ends early';
  }

  private mismatch(path: string, reason: string): void {
    this.result.mismatchCount++;
    if (this.result.mismatches.length < this.limit) this.result.mismatches.push({ path, reason });
  }
}
