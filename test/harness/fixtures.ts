import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Deterministic pseudo-random bytes (AES-256-CTR keystream of a seed), as a stream of 1 MiB buffers. */
export async function* pseudoRandom(seed: string, length: number): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const block = Buffer.alloc(1024 * 1024);
  for (let left = length; left > 0; left -= block.length)
    yield cipher.update(block.subarray(0, Math.min(left, block.length)));
}

export async function pseudoRandomBuffer(seed: string, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of pseudoRandom(seed, length)) parts.push(part);
  return Buffer.concat(parts);
}

/**
 * A tree with what a backup must get exactly right: empty and large files, nested directories,
 * symlinks (one dangling), hard links, unusual permissions, old mtimes and names that are not UTF-8.
 */
export async function makeTrickyTree(root: string): Promise<void> {
  await mkdir(join(root, 'docs', 'deep', 'deeper'), { recursive: true });
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'docs', 'readme.txt'), 'hello\n'.repeat(1000));
  await writeFile(
    join(root, 'docs', 'deep', 'deeper', 'large.bin'),
    await pseudoRandomBuffer('large', 24 * 1024 * 1024 + 17),
  );
  await writeFile(
    join(root, 'docs', 'deep', 'text.csv'),
    Array.from({ length: 50_000 }, (_, i) => `${i},customer ${i},${i * 7}\n`).join(''),
  );
  await symlink('docs/readme.txt', join(root, 'link-to-readme'));
  await symlink('/nonexistent/target', join(root, 'dangling'));
  await link(join(root, 'docs', 'readme.txt'), join(root, 'hardlink-to-readme'));
  const latin1 = Buffer.concat([
    Buffer.from(`${root}/`),
    Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]),
  ]); // "café.txt" in Latin-1
  await writeFile(latin1, 'not UTF-8 named');
  await writeFile(join(root, 'read-only'), 'locked');
  await chmod(join(root, 'read-only'), 0o444);
  await writeFile(join(root, 'script.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'script.sh'), 0o755);
  await mkdir(join(root, 'private'));
  await writeFile(join(root, 'private', 'secret'), 's');
  await chmod(join(root, 'private'), 0o700);
  await utimes(join(root, 'docs', 'readme.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  await utimes(join(root, 'docs', 'deep'), new Date('2010-01-01T00:00:00Z'), new Date('2010-01-01T00:00:00Z'));
}

/**
 * Everything restore must reproduce, per path (names hex-encoded so any bytes compare): type,
 * permissions, size, mtime (ms), content hash or link target, and which paths share an inode.
 */
export async function describeTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const inodes = new Map<bigint, string>();
  const walk = async (dir: Buffer, rel: string) => {
    for (const name of (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = `${rel}/${name.toString('hex')}`;
      const stat = await lstat(path, { bigint: true });
      const mode = (stat.mode & 0o7777n).toString(8);
      const mtime = stat.isSymbolicLink() ? '' : `${stat.mtimeMs}`;
      if (stat.isDirectory()) {
        await walk(path, key);
        out[key] = `dir ${mode} ${mtime}`;
      } else if (stat.isSymbolicLink()) {
        out[key] = `symlink -> ${(await readlink(path, { encoding: 'buffer' })).toString('hex')}`;
      } else {
        const sameAs = stat.nlink > 1n ? inodes.get(stat.ino) : undefined;
        if (stat.nlink > 1n && !sameAs) inodes.set(stat.ino, key);
        out[key] =
          `file ${mode} ${stat.size} ${mtime} ${await sha256File(path)}${sameAs ? ` hardlink-of ${sameAs}` : ''}`;
      }
    }
  };
  await walk(Buffer.from(root), '');
  return out;
}

export async function sha256File(path: string | Buffer): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
