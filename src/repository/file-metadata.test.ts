import assert from 'node:assert/strict';
import { lstat, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keptXattr, openFileMetadataIo } from './file-metadata.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-file-metadata-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const before1970 = -86_400_123_456_789n;
const recent = 1_700_000_000_123_456_789n;

describe('file metadata io', () => {
  test('the helper sets times to the nanosecond (before 1970 too, symlinks themselves) and round-trips xattrs', async (t) => {
    const io = await openFileMetadataIo();
    t.after(() => io.close());
    assert.equal(io.exact, true, 'perl runs here');
    const file = Buffer.from(join(dir, 'exact'));
    await writeFile(file, 'x');
    await io.setTimes(file, before1970, recent, false);
    const stat = await lstat(file, { bigint: true });
    assert.deepEqual([stat.atimeNs, stat.mtimeNs], [before1970, recent]);

    const link = Buffer.from(join(dir, 'link'));
    await symlink('exact', link);
    await io.setTimes(link, recent, before1970, true);
    assert.equal((await lstat(link, { bigint: true })).mtimeNs, before1970);
    assert.equal((await lstat(file, { bigint: true })).mtimeNs, recent, 'the target is untouched');

    await io.setXattr(file, { name: 'user.b', value: Buffer.from([0, 255]) });
    await io.setXattr(file, { name: 'user.a', value: Buffer.alloc(0) });
    assert.deepEqual(await io.readXattrs(file), [
      { name: 'user.a', value: Buffer.alloc(0) },
      { name: 'user.b', value: Buffer.from([0, 255]) },
    ]);
    await assert.rejects(io.readXattrs(Buffer.from(join(dir, 'missing'))), { code: 'ENOENT' });
  });

  test('many requests at once (written in batches) each get their own answer, failures included', async (t) => {
    const io = await openFileMetadataIo();
    t.after(() => io.close());
    const files = Array.from({ length: 3000 }, (_, i) => Buffer.from(join(dir, `many-${i}`)));
    await Promise.all(files.map((file) => writeFile(file, '')));
    await Promise.all(files.map((file, i) => io.setXattr(file, { name: 'user.i', value: Buffer.from(`${i}`) })));
    const answers = await Promise.allSettled(
      files.flatMap((file, i) =>
        i % 100 === 0 ? [io.readXattrs(Buffer.from(`${file}-missing`))] : [io.readXattrs(file)],
      ),
    );
    answers.forEach((answer, i) => {
      if (i % 100 === 0)
        assert.equal(answer.status === 'rejected' && (answer.reason as NodeJS.ErrnoException).code, 'ENOENT');
      else
        assert.deepEqual(answer.status === 'fulfilled' && answer.value, [
          { name: 'user.i', value: Buffer.from(`${i}`) },
        ]);
    });
  });

  test('without the helper: within half a microsecond (a double of seconds), before 1970 too, and no xattrs', async () => {
    const io = await openFileMetadataIo('/nonexistent/perl');
    assert.equal(io.exact, false);
    const file = Buffer.from(join(dir, 'fallback'));
    await writeFile(file, 'x');
    const late = 4_102_444_799_999_999_999n; // 2099-12-31T23:59:59.999999999Z: a double's step is ~0.95 µs
    for (const [atime, mtime] of [
      [before1970, recent],
      [recent, late],
      [-1n, 999n],
    ] as const) {
      await io.setTimes(file, atime, mtime, false);
      const stat = await lstat(file, { bigint: true });
      for (const [got, wanted] of [
        [stat.atimeNs, atime],
        [stat.mtimeNs, mtime],
      ] as const)
        assert.ok(got - wanted < 500n && wanted - got < 500n, `set ${wanted} ns, got ${got}`);
    }
    assert.deepEqual(await io.readXattrs(file), []);
    await assert.rejects(io.setXattr(file, { name: 'user.a', value: Buffer.alloc(0) }), { code: 'ENOTSUP' });
  });

  test('kept namespaces: user.* and POSIX ACLs', () => {
    assert.ok(keptXattr('user.mime_type'));
    assert.ok(keptXattr('system.posix_acl_access'));
    assert.ok(!keptXattr('security.selinux'));
    assert.ok(!keptXattr('trusted.overlay.opaque'));
  });
});
