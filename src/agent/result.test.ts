import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeResult } from './result.ts';

test('a result that fits is encoded whole', () => {
  const result = { ok: true, snapshotId: 'abc', objects: [{ name: 't', records: 1 }] };
  assert.deepEqual(JSON.parse(encodeResult(result)), result);
});

test('a result with thousands of tables is cut to the termination message limit, saying so', () => {
  const objects = Array.from({ length: 5000 }, (_, i) => ({ name: `public.table_${i}`, records: i }));
  const text = encodeResult({ ok: true, snapshotId: 'abc', objects, skipped: [{ path: 'x', reason: 'y' }] });
  assert.ok(Buffer.byteLength(text) <= 4096);
  const decoded = JSON.parse(text);
  assert.equal(decoded.snapshotId, 'abc');
  assert.equal(decoded.objectsTruncated, true);
  assert.deepEqual(decoded.objects[0], objects[0]);
  assert.deepEqual(decoded.skipped, []);
});
