import assert from 'node:assert/strict';
import { appendFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupTree } from './backup.ts';
import { Repository } from './repository.ts';
import { FileStorage } from './storage/file.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-backup-'));
after(() => rm(root, { recursive: true, force: true }));

// Small files are read whole with synchronous calls (backup.ts, readWhole): a file that grows after the walk's
// lstat, or is deleted before it is opened, must still be noted, as a large file read as a stream is.
test('a small file changed after its lstat is noted as changed while read, a deleted one as vanished', async () => {
  const repository = await Repository.init(new FileStorage(join(root, 'repo')), Buffer.from('backup test'), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const source = join(root, 'source');
  await mkdir(source);
  for (const name of ['a', 'b', 'c', 'd']) await writeFile(join(source, name), `${name}\n`.repeat(100));
  let touched = false;
  const snapshot = await backupTree(repository, source, {
    type: 'full',
    source: 'test',
    // One entry at a time: a's read reports progress (the first report is at once) before b and c are opened.
    parallelFiles: 1,
    onProgress: () => {
      if (touched) return;
      touched = true;
      appendFileSync(join(source, 'b'), 'grown\n');
      rmSync(join(source, 'c'));
    },
  });
  assert.equal(touched, true);
  assert.deepEqual(snapshot.skipped, [
    { path: '/b', reason: 'changed while being read: stored as read, may be inconsistent' },
    { path: '/c', reason: 'vanished while being read' },
  ]);
  assert.equal(snapshot.summary.files, 3);
});
