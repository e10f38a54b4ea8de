import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeName, decodeTarget, decodeTree, encodeName, encodeTarget, encodeTree } from './tree.ts';

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
  assert.deepEqual(decodeTree(encodeTree(tree)), tree);
});
