import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { isStale, STALE_MS } from './lock.ts';

const now = new Date('2026-11-23T12:00:00Z');
const lock = (refreshedAgoMs: number, pid: number, host = hostname()) => ({
  exclusive: false,
  hostname: host,
  pid,
  time: now.toISOString(),
  refreshed: new Date(now.getTime() - refreshedAgoMs).toISOString(),
});

test('a lock of a live process, refreshed lately, holds', () => {
  assert.equal(isStale(lock(1000, process.pid), now), false);
});

test('a lock not refreshed for STALE_MS is stale, whoever holds it', () => {
  assert.equal(isStale(lock(STALE_MS + 1, process.pid), now), true);
  assert.equal(isStale(lock(STALE_MS + 1, 1, 'another-host'), now), true);
});

test('a lock of a dead process on this host is stale at once; on another host it is not', () => {
  const dead = 2 ** 22 + 12345; // above pid_max's default range
  assert.equal(isStale(lock(1000, dead), now), true);
  assert.equal(isStale(lock(1000, dead, 'another-host'), now), false);
});
