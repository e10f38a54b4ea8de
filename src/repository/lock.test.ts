import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCode } from '../errors.ts';
import { acquireLock, isStale, STALE_MS } from './lock.ts';
import { FileStorage } from './storage/file.ts';

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

test('an exclusive lock waits for a shared one up to waitMs, then fails with Locked naming the holder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-lock-'));
  try {
    const storage = new FileStorage(dir);
    const shared = await acquireLock(storage, false);
    await assert.rejects(acquireLock(storage, true, { waitMs: 1200 }), (error: unknown) => {
      assert.ok(isCode(error, 'Locked'));
      assert.match(
        (error as Error).message,
        new RegExp(`locked by ${hostname()} pid ${process.pid} .*\\(waited 1 s\\)`),
      );
      return true;
    });
    const waiting = acquireLock(storage, true, { waitMs: 30_000 });
    await shared.release();
    await (await waiting).release();
    for await (const blob of storage.list('locks/')) assert.fail(`${blob.name} is left behind`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
