import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeName, decodeTarget, decodeTree, encodeName, encodeTarget, encodeTree, TREE_VERSION } from './tree.ts';

test('UTF-8 names are stored as text, others as base64, and both decode to the same bytes', () => {
  const utf8 = Buffer.from('café ☕.txt');
  const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
  assert.deepEqual(encodeName(utf8), { name: 'café ☕.txt' });
  assert.deepEqual(encodeName(latin1), { nameB64: latin1.toString('base64') });
  assert.deepEqual(decodeName(encodeName(utf8)), utf8);
  assert.deepEqual(decodeName(encodeName(latin1)), latin1);
});

test('symlink targets round-trip the same way', () => {
  const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xff]);
  const encoded = encodeTarget(target);
  assert.ok(encoded.targetB64);
  assert.deepEqual(decodeTarget({ type: 'symlink', mode: 0o777, mtimeNs: '0', uid: 0, gid: 0, ...encoded }), target);
});

test('a tree round-trips through its encoding', () => {
  const tree = {
    entries: [{ name: 'a', type: 'file' as const, mode: 0o644, mtimeNs: '1', uid: 1, gid: 2, size: 0, content: [] }],
  };
  assert.deepEqual(decodeTree(encodeTree(tree)), { version: TREE_VERSION, ...tree });
});

test('a version 1 tree (no version, no atime, ctime or xattrs) still reads; a newer version is refused', () => {
  const v1 =
    '{"entries":[{"name":"a","type":"file","mode":420,"mtimeNs":"-1","uid":0,"gid":0,"size":0,"content":[],"inode":7}]}';
  const tree = decodeTree(Buffer.from(v1));
  assert.equal(tree.version, undefined);
  assert.equal(tree.entries[0]?.ctimeNs, undefined);
  assert.deepEqual(decodeTree(encodeTree(tree)).version, TREE_VERSION, 'written anew as the current version');
  assert.equal(decodeTree(encodeTree({ version: 1, entries: tree.entries })).version, 1, 'copy keeps the version');
  assert.throws(() => decodeTree(Buffer.from(`{"version":${TREE_VERSION + 1},"entries":[]}`)), {
    code: 'Unsupported',
  });
});
