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

test('a long warning (counts of thousands of tables that differ) is shortened before objects are dropped', () => {
  const objects = Array.from({ length: 50 }, (_, i) => ({ name: `public.t${i}`, records: i }));
  const warning = `restored row counts differ from the backup's: ${objects.map((o) => `${o.name}: 0 restored, ${o.records} in the backup`).join('; ')}`;
  const decoded = JSON.parse(encodeResult({ ok: true, objects, warnings: [warning, 'short'] }, 2048));
  assert.equal(decoded.warnings[0], `${warning.slice(0, 297)}...`);
  assert.equal(decoded.warnings[1], 'short');
  assert.ok(decoded.objects.length > 0);
});
