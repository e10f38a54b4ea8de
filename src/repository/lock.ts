import { hostname } from 'node:os';
import { TidemarkError, withCleanup } from '../errors.ts';
import { log } from '../log.ts';
import { blobNames, idOf, prefixes, randomId } from './format.ts';
import type { Storage } from './storage/storage.ts';

/**
 * `locks/<id>` (plain JSON). Backups take a shared lock, prune an exclusive one: prune never runs while
 * a backup writes packs it has not indexed yet. A lock not refreshed for STALE_MS, or held by a dead
 * process on this host, is stale and ignored (so a killed backup blocks nothing for long).
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

export async function acquireLock(storage: Storage, exclusive: boolean, now = () => new Date()): Promise<Lock> {
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
  await storage.put(name, Buffer.from(JSON.stringify(body())));
  const conflict = await conflictingLock(storage, id, exclusive, now());
  if (conflict) {
    await storage.delete(name);
    throw new TidemarkError(
      'Locked',
      `${storage.description} is locked ${conflict.exclusive ? 'exclusively' : ''} by ${conflict.hostname} pid ${conflict.pid} since ${conflict.time}`,
      { retryable: true },
    );
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
