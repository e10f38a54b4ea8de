import assert from 'node:assert/strict';
import { closeSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NoAtimeOpener } from './no-atime.ts';

const NOBODY = 65534;

// O_NOATIME is refused (EPERM) on a file the process neither owns nor has CAP_FOWNER for. As root the test
// becomes nobody (effective uid; capabilities drop with it) to be such a process and reads a file root wrote; as
// another user, it reads /etc/passwd (root's).
test('a file of another owner opens without O_NOATIME, and that owner is not tried again; an owned one keeps it', {
  skip: process.platform !== 'linux' && 'O_NOATIME is Linux only',
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'no-atime-'));
  try {
    await chmod(dir, 0o755);
    const root = process.geteuid?.() === 0;
    const others = root ? join(dir, 'others') : '/etc/passwd';
    const own = join(dir, 'own');
    if (root) await writeFile(others, 'not ours\n', { mode: 0o644 });
    await writeFile(own, 'ours\n', { mode: 0o644 });
    if (root) await chown(own, NOBODY, NOBODY);
    const me = root ? NOBODY : (process.geteuid?.() ?? 0);
    const openers = {
      async: (opener: NoAtimeOpener, path: string, owner: number) => opener.open(Buffer.from(path), owner),
      sync: async (opener: NoAtimeOpener, path: string, owner: number) => opener.openSync(Buffer.from(path), owner),
    };
    if (root) process.seteuid?.(NOBODY);
    try {
      for (const [kind, open] of Object.entries(openers)) {
        const opener = new NoAtimeOpener();
        for (let i = 0; i < 2; i++) {
          const fd = await open(opener, others, 0);
          assert.equal(readFileSync(fd, 'utf8'), await readFile(others, 'utf8'), kind);
          closeSync(fd);
        }
        assert.equal(opener.plainFor(0), true, kind);
        closeSync(await open(opener, own, me));
        assert.equal(opener.plainFor(me), false, kind);
      }
    } finally {
      if (root) process.seteuid?.(0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
