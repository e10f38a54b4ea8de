import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { restoreTree } from './restore.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-backup-races-'));
after(() => rm(root, { recursive: true, force: true }));

/** Every file's content under `dir`, recursively (symlinks not followed). */
async function contents(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await contents(path)));
    else if (entry.isFile()) found.push(readFileSync(path, 'utf8'));
  }
  return found;
}

// Whoever can write to a volume can rename its names while a backup walks it. A name the walk listed as a file or
// a directory of the volume, then replaced by a symlink to something outside it (the agent's /proc/self/environ
// with the repository's passphrase, a mounted Secret), or by a FIFO, must never bring the outside content into the
// snapshot, nor stall the backup: the walk reaches what it listed, or skips the name as replaced.
test('names replaced after the walk listed them (symlink out of the tree, FIFO) are skipped, never followed', async () => {
  const repository = await testRepository(join(root, 'repo'));
  const outside = join(root, 'outside');
  mkdirSync(join(outside, 'secrets'), { recursive: true });
  await writeFile(join(outside, 'secrets', 'token'), 'TOP SECRET');
  const source = join(root, 'source');
  await mkdir(join(source, 'd'), { recursive: true });
  await writeFile(join(source, 'd', 'token'), 'genuine d/token');
  for (const name of ['a', 'b', 'c', 'e']) await writeFile(join(source, name), `genuine ${name}`);
  let replaced = false;
  const snapshot = await backupTree(repository, source, {
    type: 'full',
    source: 'test',
    // One entry at a time: a's read reports progress (the first report is at once) after the walk listed and
    // lstat-ed every name of the root, before b, c, d and e are opened.
    parallelFiles: 1,
    onProgress: () => {
      if (replaced) return;
      replaced = true;
      const swap = (name: string, make: (temporary: string) => void) => {
        make(join(root, `new-${name}`));
        renameSync(join(source, name), join(root, `old-${name}`));
        renameSync(join(root, `new-${name}`), join(source, name));
      };
      swap('b', (path) => symlinkSync(join(outside, 'secrets', 'token'), path));
      swap('c', (path) => execFileSync('mkfifo', [path]));
      swap('d', (path) => symlinkSync(join(outside, 'secrets'), path));
      swap('e', (path) => symlinkSync('/proc/self/environ', path));
    },
  });
  assert.equal(replaced, true);
  const open = readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // the descriptor readdir itself used
    }
  });
  assert.deepEqual(
    open.filter((path) => path.startsWith(root)),
    [],
    'every directory the walk opened is closed',
  );
  const skipped = snapshot.skipped ?? [];
  assert.deepEqual(
    skipped.map((s) => s.path),
    ['/b', '/c', '/d', '/e'],
    `skipped: ${JSON.stringify(skipped)}`,
  );
  for (const { reason } of skipped) assert.match(reason, /replaced while being read/);
  const target = join(root, 'restored');
  await restoreTree(repository, snapshot, target);
  assert.deepEqual(await contents(target), ['genuine a']);
});
