import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, mergePatch } from './resources.ts';

test('canonicalJson ignores key order at every depth but not array order or values', () => {
  const ours = { phase: 'Succeeded', repositories: [{ name: 'primary', snapshot: 'ab' }], counts: { b: 1, a: 2 } };
  const server = { counts: { a: 2, b: 1 }, phase: 'Succeeded', repositories: [{ snapshot: 'ab', name: 'primary' }] };
  assert.equal(canonicalJson(ours), canonicalJson(server));
  assert.notEqual(canonicalJson({ list: [1, 2] }), canonicalJson({ list: [2, 1] }));
  assert.notEqual(canonicalJson({ a: 1 }), canonicalJson({ a: '1' }));
  assert.equal(canonicalJson({ a: undefined, b: 1 }), canonicalJson({ b: 1 }));
});

test('mergePatch sends what changed, null for what was removed, arrays whole, and nothing about fields neither side has', () => {
  const cached = {
    phase: 'Succeeded',
    error: 'old',
    progress: { files: 3, bytes: 10 },
    repositories: [
      { repository: 'primary', state: 'Succeeded' },
      { repository: 'replica', state: 'Pending' },
    ],
  };
  const next = {
    phase: 'Succeeded',
    progress: { files: 3, bytes: 12 },
    repositories: [
      { repository: 'primary', state: 'Succeeded' },
      { repository: 'replica', state: 'Succeeded' },
    ],
    jobName: undefined,
  };
  assert.deepEqual(mergePatch(cached, next), {
    error: null,
    progress: { bytes: 12 },
    repositories: next.repositories,
  });
  // The server's status has objects the cache left out: neither side names them, so they stay.
  const server = { ...cached, objects: [{ name: 't', records: 1 }] };
  const patched = applyMergePatch(server, mergePatch(cached, next));
  const { jobName: _, ...written } = next;
  assert.deepEqual(patched, { ...written, objects: server.objects });
  assert.deepEqual(mergePatch({}, { phase: 'Running' }), { phase: 'Running' });
  assert.deepEqual(mergePatch(cached, cached), {});
});

/** RFC 7386, to check the patch against. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}
