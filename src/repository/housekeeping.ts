import { isCode } from '../errors.ts';
import { blobNames, prefixes } from './format.ts';
import { isStale, type LockFile, STALE_MS } from './lock.ts';
import type { Leftover, Storage } from './storage/storage.ts';

/** What crashed writers leave behind: nothing a reader relies on, so it is safe to remove. */
export interface CrashLeftovers {
  /** Temporary blobs (files, multipart uploads) of puts not touched for STALE_MS (no live put is that silent). */
  tempBlobs: { name: string; size: number; modified: string }[];
  /** Lock files of dead or silent holders (lock.ts `isStale`), and lock files that are not a lock. */
  staleLocks: { name: string; reason: string }[];
}

/** Finds the leftovers of crashed writers (`check` reports them; `prune` and `repo unlock --remove-stale` remove them). */
export async function findCrashLeftovers(storage: Storage, now = new Date()): Promise<CrashLeftovers> {
  return describe(await deadTempBlobs(storage, now), await staleLocks(storage, now));
}

/** Removes the leftovers of crashed writers; returns what it removed. */
export async function removeCrashLeftovers(storage: Storage, now = new Date()): Promise<CrashLeftovers> {
  const temps = await deadTempBlobs(storage, now);
  const locks = await staleLocks(storage, now);
  for (const lock of locks) await storage.delete(lock.name);
  for (const temp of temps) await temp.remove();
  return describe(temps, locks);
}

function describe(temps: Leftover[], staleLocks: CrashLeftovers['staleLocks']): CrashLeftovers {
  return {
    tempBlobs: temps.map((t) => ({ name: t.name, size: t.size, modified: t.modified.toISOString() })),
    staleLocks,
  };
}

/**
 * Temporary blobs old enough to be dead, where the repository writes (a repository at a bucket's root
 * leaves other uploads in the bucket alone).
 */
async function deadTempBlobs(storage: Storage, now: Date): Promise<Leftover[]> {
  const found: Leftover[] = [];
  for await (const temp of storage.leftovers?.() ?? []) {
    const folder = temp.name.slice(0, temp.name.indexOf('/') + 1);
    const ours = Object.values(prefixes).includes(folder) || temp.name === blobNames.config;
    if (ours && now.getTime() - temp.modified.getTime() > STALE_MS) found.push(temp);
  }
  return found;
}

async function staleLocks(storage: Storage, now: Date): Promise<CrashLeftovers['staleLocks']> {
  const found: CrashLeftovers['staleLocks'] = [];
  for await (const blob of storage.list(prefixes.locks)) {
    let lock: LockFile | undefined;
    try {
      lock = parseLock(await storage.get(blob.name));
    } catch (error) {
      if (isCode(error, 'NotFound')) continue; // released meanwhile
      throw error;
    }
    // Lock puts are atomic, so an unparsable lock is no lock being written but a damaged one; it holds nothing.
    if (!lock) found.push({ name: blob.name, reason: `not a lock (${blob.size} bytes that are not lock JSON)` });
    else if (isStale(lock, now))
      found.push({
        name: blob.name,
        reason: `held by ${lock.hostname} pid ${lock.pid} since ${lock.time}, last refreshed ${lock.refreshed}`,
      });
  }
  return found;
}

function parseLock(bytes: Buffer): LockFile | undefined {
  try {
    const lock = JSON.parse(bytes.toString('utf8')) as Partial<LockFile> | null;
    return typeof lock?.refreshed === 'string' && typeof lock.hostname === 'string' ? (lock as LockFile) : undefined;
  } catch {
    return undefined;
  }
}
