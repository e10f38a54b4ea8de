import { isCode } from '../errors.ts';
import { prefixes } from './format.ts';
import { isStale, type LockFile, STALE_MS } from './lock.ts';
import type { Storage } from './storage/storage.ts';

/** What crashed writers leave behind: nothing a reader relies on, so it is safe to remove. */
export interface CrashLeftovers {
  /** Temporary blobs of puts not touched for STALE_MS (no live put is that silent). */
  tempBlobs: { name: string; size: number; modified: string }[];
  /** Lock files of dead or silent holders (lock.ts `isStale`), and lock files that are not a lock. */
  staleLocks: { name: string; reason: string }[];
}

/** Finds the leftovers of crashed writers (`check` reports them; `prune` and `repo unlock --remove-stale` remove them). */
export async function findCrashLeftovers(storage: Storage, now = new Date()): Promise<CrashLeftovers> {
  return { tempBlobs: await oldTempBlobs(storage, now), staleLocks: await staleLocks(storage, now) };
}

/** Removes the leftovers of crashed writers; returns what it removed. */
export async function removeCrashLeftovers(storage: Storage, now = new Date()): Promise<CrashLeftovers> {
  const leftovers = await findCrashLeftovers(storage, now);
  for (const lock of leftovers.staleLocks) await storage.delete(lock.name);
  for await (const temp of storage.leftovers?.() ?? []) if (isOld(temp.modified, now)) await temp.remove(); // listed again: a removal needs the backend's handle
  return leftovers;
}

async function oldTempBlobs(storage: Storage, now: Date): Promise<CrashLeftovers['tempBlobs']> {
  const found: CrashLeftovers['tempBlobs'] = [];
  for await (const temp of storage.leftovers?.() ?? [])
    if (isOld(temp.modified, now))
      found.push({ name: temp.name, size: temp.size, modified: temp.modified.toISOString() });
  return found;
}

function isOld(modified: Date, now: Date): boolean {
  return now.getTime() - modified.getTime() > STALE_MS;
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
