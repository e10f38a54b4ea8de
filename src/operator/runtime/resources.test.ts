import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from './resources.ts';

test('canonicalJson ignores key order at every depth but not array order or values', () => {
  const ours = { phase: 'Succeeded', repositories: [{ name: 'primary', snapshot: 'ab' }], counts: { b: 1, a: 2 } };
  const server = { counts: { a: 2, b: 1 }, phase: 'Succeeded', repositories: [{ snapshot: 'ab', name: 'primary' }] };
  assert.equal(canonicalJson(ours), canonicalJson(server));
  assert.notEqual(canonicalJson({ list: [1, 2] }), canonicalJson({ list: [2, 1] }));
  assert.notEqual(canonicalJson({ a: 1 }), canonicalJson({ a: '1' }));
  assert.equal(canonicalJson({ a: undefined, b: 1 }), canonicalJson({ b: 1 }));
});
