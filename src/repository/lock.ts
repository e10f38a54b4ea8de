import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { TidemarkError, withCleanup } from '../errors.ts';
import { log } from '../log.ts';
import { blobNames, idOf, prefixes, randomId } from './format.ts';
import type { Storage } from './storage/storage.ts';

/**
 * `locks/<id>` (plain JSON). Backup, copy and restore take a shared lock, prune an exclusive one: prune
 * never runs while a backup writes packs it has not indexed yet or a restore or copy reads chunks. A
 * lock not refreshed for STALE_MS, or held by a dead process on this host, is stale and ignored (so a
 * killed backup blocks nothing for long).
 */
export interface LockFile {
  exclusive: boolean;
  hostname: string;
  pid: number;
  time: string;
  refreshed: string;
}

export const STALE_MS = 30 * 60 * 1000;
const REFRESH_MS = 5 * 60 * 1000;

/** How often a waiting lock looks again. */
const RETRY_MS = 1000;
/** How long a shared lock waits for an exclusive one by default: a restore or backup outwaits a prune. */
const SHARED_WAIT_MS = 10 * 60 * 1000;

export interface Lock {
  release(): Promise<void>;
}

/**
 * Runs `work` holding `lock`, then releases it. A release that fails after `work` failed is logged, and the work's
 * error is what surfaces (the lock goes stale and is ignored after STALE_MS).
 */
export function whileHolding<T>(lock: Lock, work: () => Promise<T>): Promise<T> {
  return withCleanup(
    work,
    () => lock.release(),
    (releaseError) =>
      log.warn(
        { event: 'lock-release-failed', err: (releaseError as Error).message },
        'releasing the repository lock failed after the command had failed; the lock goes stale',
      ),
  );
}

export interface LockOptions {
  /** How long to wait for conflicting locks to go away, then fail with Locked; default: SHARED_WAIT_MS for a shared lock, 0 for an exclusive one. */
  waitMs?: number;
}

/**
 * Takes a lock: writes it, then looks for a conflicting one. On a conflict it removes its own (so two
 * waiters never block each other for good), and tries again until `waitMs` has passed.
 */
export async function acquireLock(
  storage: Storage,
  exclusive: boolean,
  options: LockOptions = {},
  now = () => new Date(),
): Promise<Lock> {
  const id = randomId();
  const name = blobNames.lock(id);
  const body = (): LockFile => ({
    exclusive,
    hostname: hostname(),
    pid: process.pid,
    time: started,
    refreshed: now().toISOString(),
  });
  const started = now().toISOString();
  const waitMs = options.waitMs ?? (exclusive ? 0 : SHARED_WAIT_MS);
  const deadline = now().getTime() + waitMs;
  for (;;) {
    await storage.put(name, Buffer.from(JSON.stringify(body())));
    const conflict = await conflictingLock(storage, id, exclusive, now());
    if (!conflict) break;
    await storage.delete(name);
    const left = deadline - now().getTime();
    if (left <= 0)
      throw new TidemarkError(
        'Locked',
        `${storage.description} is locked ${conflict.exclusive ? 'exclusively ' : ''}by ${conflict.hostname} pid ${conflict.pid} since ${conflict.time}${waitMs ? ` (waited ${Math.round(waitMs / 1000)} s)` : ''}`,
        { retryable: true },
      );
    await sleep(Math.min(RETRY_MS, left));
  }
  const timer = setInterval(
    () => void storage.put(name, Buffer.from(JSON.stringify(body()))).catch(() => {}),
    REFRESH_MS,
  );
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await storage.delete(name);
    },
  };
}

async function conflictingLock(
  storage: Storage,
  ownId: string,
  exclusive: boolean,
  now: Date,
): Promise<LockFile | undefined> {
  for await (const blob of storage.list(prefixes.locks)) {
    if (idOf(blob.name) === ownId) continue;
    let lock: LockFile;
    try {
      lock = JSON.parse((await storage.get(blob.name)).toString('utf8')) as LockFile;
    } catch {
      continue; // removed meanwhile, or half-written by a crashed writer: not a holder
    }
    if (isStale(lock, now)) continue;
    if (exclusive || lock.exclusive) return lock;
  }
  return undefined;
}

export function isStale(lock: LockFile, now: Date): boolean {
  if (now.getTime() - Date.parse(lock.refreshed) > STALE_MS) return true;
  if (lock.hostname !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
