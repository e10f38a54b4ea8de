import assert from 'node:assert/strict';
import { test } from 'node:test';
import { immutableUntil } from './immutability.ts';

const now = new Date('2026-11-23T09:00:00Z');

test('a snapshot is immutable until its write time plus the period', () => {
  assert.deepEqual(immutableUntil('2026-11-23T08:30:00Z', '1h', now), new Date('2026-11-23T09:30:00Z'));
  assert.equal(immutableUntil('2026-11-23T07:59:59Z', '1h', now), undefined);
  assert.equal(immutableUntil('2026-11-23T08:30:00Z', undefined, now), undefined);
});

test('an undatable snapshot counts as just written', () => {
  assert.deepEqual(immutableUntil('', '1d', now), new Date('2026-11-24T09:00:00Z'));
});
