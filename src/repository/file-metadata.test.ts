import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type FileMetadataIo, keptXattr, openFileMetadataIo, type Xattr } from './file-metadata.ts';
import { perNameXattrs, setXattrs } from './testing/xattrs.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-file-metadata-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const before1970 = -86_400_123_456_789n;
const recent = 1_700_000_000_123_456_789n;

/** What `readXattrsIn` answered, in the shape of `perNameXattrs`. */
function asRead(answers: (Xattr[] | NodeJS.ErrnoException)[]): (Record<string, string> | string)[] {
  return answers.map((answer) =>
    answer instanceof Error
      ? String(answer.code)
      : Object.fromEntries(answer.map((x) => [x.name, x.value.toString('hex')])),
  );
}

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
    const [read, missing] = await io.readXattrsIn(Buffer.from(dir), [Buffer.from('exact'), Buffer.from('missing')]);
    assert.deepEqual(read, [
      { name: 'user.a', value: Buffer.alloc(0) },
      { name: 'user.b', value: Buffer.from([0, 255]) },
    ]);
    assert.ok(missing instanceof Error);
    assert.equal(missing.code, 'ENOENT');
    assert.match(missing.message, /reading extended attributes of '.*\/missing'/);
  });

  test('one request answers for each name of a directory what a per-name read gives: odd names, binary values, symlinks, subdirectories, vanished names, paths too long', async (t) => {
    const io = await openFileMetadataIo();
    t.after(() => io.close());
    const odd = Buffer.from(join(dir, 'odd'));
    await mkdir(odd);
    const names = [
      'plain',
      'with space',
      'new\nline',
      Buffer.from([0x66, 0xff, 0xfe, 0x20, 0x0a]),
      'link',
      'sub',
      'gone',
      'empty value',
    ].map((n) => Buffer.from(n));
    const at = (name: string) => Buffer.concat([odd, Buffer.from('/'), Buffer.from(name)]);
    for (const name of names.filter((n) => !['link', 'sub'].includes(n.toString())))
      await writeFile(Buffer.concat([odd, Buffer.from('/'), name]), name);
    await symlink('with space', at('link'));
    await mkdir(at('sub'));
    const binary = Buffer.from([0, 255, 10, 32, 61, 33, 58]);
    setXattrs([
      ...names.slice(1, 4).flatMap((name): [Buffer, Buffer, Buffer][] => {
        const path = Buffer.concat([odd, Buffer.from('/'), name]);
        return [
          [path, Buffer.from('user.binary'), binary],
          [path, Buffer.from('user.name with space\nand newline'), Buffer.from('v')],
          [path, Buffer.from('trusted.host'), Buffer.from('only here')],
        ];
      }),
      [at('sub'), Buffer.from('user.dir'), Buffer.from('d')],
      [at('empty value'), Buffer.from('user.empty'), Buffer.alloc(0)],
    ]);
    // Removed after the listing: its name is asked for all the same.
    await rm(at('gone'));

    // A name whose path is longer than the kernel takes (PATH_MAX), beside one that fits: a real failure of
    // one name other than a vanished one, which every other name of the request survives.
    const deep = Buffer.from(join(dir, ...Array.from({ length: 20 }, () => 'd'.repeat(200))));
    await mkdir(deep, { recursive: true });
    const fits = Buffer.from('x'.repeat(4090 - deep.length));
    const tooLong = Buffer.from('y'.repeat(255));
    await writeFile(Buffer.concat([deep, Buffer.from('/'), fits]), '');
    setXattrs([[Buffer.concat([deep, Buffer.from('/'), fits]), Buffer.from('user.deep'), Buffer.from('yes')]]);

    const answers = asRead(await io.readXattrsIn(odd, names));
    assert.deepEqual(answers, perNameXattrs(odd, names));
    assert.equal(answers[6], 'ENOENT');
    assert.deepEqual(answers[4], {}, 'the symlink has none of its own (its target has some)');
    assert.deepEqual(Object.keys(answers[1] as object), [
      'trusted.host',
      'user.binary',
      'user.name with space\nand newline',
    ]);
    const deepAnswers = asRead(await io.readXattrsIn(deep, [fits, tooLong]));
    assert.deepEqual(deepAnswers, [{ 'user.deep': Buffer.from('yes').toString('hex') }, 'ENAMETOOLONG']);
  });

  test('a name whose attributes cannot be read (permission denied) fails alone', async (t) => {
    // We are root: a helper without the capabilities that bypass file permissions meets them as anyone would.
    const perl = join(dir, 'unprivileged-perl');
    await writeFile(
      perl,
      '#!/bin/sh\nexec setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search perl "$@"\n',
      { mode: 0o755 },
    );
    const io = await openFileMetadataIo(perl);
    t.after(() => io.close());
    assert.equal(io.exact, true);
    const locked = Buffer.from(join(dir, 'locked'));
    await mkdir(locked);
    for (const name of ['a', 'b', 'c']) await writeFile(join(locked.toString(), name), name);
    setXattrs(
      ['a', 'b', 'c'].map((name) => [
        Buffer.from(join(locked.toString(), name)),
        Buffer.from('user.x'),
        Buffer.from(name),
      ]),
    );
    await chmod(join(locked.toString(), 'b'), 0);
    const answers = await io.readXattrsIn(
      locked,
      ['a', 'b', 'c'].map((n) => Buffer.from(n)),
    );
    assert.deepEqual(asRead(answers), [{ 'user.x': '61' }, 'EACCES', { 'user.x': '63' }]);
    assert.match((answers[1] as Error).message, /^EACCES: reading extended attributes of '.*\/locked\/b'$/);
  });

  test('many requests at once (written in batches) each get their own answer, failures included', async (t) => {
    const io = await openFileMetadataIo();
    t.after(() => io.close());
    const many = Buffer.from(join(dir, 'many'));
    await mkdir(many);
    const names = Array.from({ length: 3000 }, (_, i) => Buffer.from(`many-${i}`));
    await Promise.all(names.map((name) => writeFile(Buffer.concat([many, Buffer.from('/'), name]), '')));
    await Promise.all(
      names.map((name, i) =>
        io.setXattr(Buffer.concat([many, Buffer.from('/'), name]), { name: 'user.i', value: Buffer.from(`${i}`) }),
      ),
    );
    const requests = Array.from({ length: 30 }, (_, r) =>
      names.slice(r * 100, r * 100 + 100).map((name, i) => (i === r ? Buffer.from(`${name}-missing`) : name)),
    );
    const answers = await Promise.all(requests.map((request) => io.readXattrsIn(many, request)));
    answers.forEach((answer, r) => {
      assert.deepEqual(
        asRead(answer),
        Array.from({ length: 100 }, (_, i) =>
          i === r ? 'ENOENT' : { 'user.i': Buffer.from(`${r * 100 + i}`).toString('hex') },
        ),
      );
    });
  });

  test('without the helper: within half a microsecond (a double of seconds), before 1970 too, and no xattrs', async () => {
    const io: FileMetadataIo = await openFileMetadataIo('/nonexistent/perl');
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
    assert.deepEqual(await io.readXattrsIn(Buffer.from(dir), [Buffer.from('fallback'), Buffer.from('missing')]), [
      [],
      [],
    ]);
    await assert.rejects(io.setXattr(file, { name: 'user.a', value: Buffer.alloc(0) }), { code: 'ENOTSUP' });
  });

  test('kept namespaces: user.* and POSIX ACLs', () => {
    assert.ok(keptXattr('user.mime_type'));
    assert.ok(keptXattr('system.posix_acl_access'));
    assert.ok(!keptXattr('security.selinux'));
    assert.ok(!keptXattr('trusted.overlay.opaque'));
  });
});
