import { isCode } from '../errors.ts';
import type { ScryptParams } from './crypto.ts';
import { blobNames, prefixes, randomId } from './format.ts';
import { replicaMasterKeys, unwrapMasterKeys, wrapMasterKeys } from './keys.ts';
import { whileHolding } from './lock.ts';
import { parseKeyFile, Repository } from './repository.ts';
import type { Storage } from './storage/storage.ts';

/**
 * Opens the replica of `primary` at `storage`, sharing the primary's chunk identity (id key, chunker
 * seed and sizes) where it can, so a copy reads only what the replica lacks (copy.ts):
 * - an empty location is initialised as such a replica;
 * - a replica still empty (no pack, index or snapshot) with its own id key adopts the primary's
 *   (same chunker sizes only: `config` is never rewritten);
 * - any other keeps its own identity, and copies into it re-identify every chunk.
 * The replica's encryption key and passphrase stay its own.
 */
export async function openReplica(primary: Repository, storage: Storage, passphrase: Buffer): Promise<Repository> {
  const exists = await storage.stat(blobNames.config).catch((error: unknown) => {
    if (isCode(error, 'ContainerMissing')) return undefined; // init creates the bucket or container
    throw error;
  });
  if (!exists) return Repository.init(storage, passphrase, { chunkIdentityOf: primary });
  const replica = await Repository.open(storage, passphrase);
  if (replica.sharesChunkIdentityWith(primary) && (await keyFileNames(storage)).length === 1) return replica;
  return (await adoptChunkIdentity(primary, replica, passphrase)) ? Repository.open(storage, passphrase) : replica;
}

/**
 * Under the replica's exclusive lock, when it holds no data, every key file opens with `passphrase` and
 * its credentials may delete key files (else it keeps its own identity):
 * writes a key file wrapping the replica's encryption key with the primary's id key and chunker seed
 * (unless one is there already), then deletes the key files of the old identity. A crash in between
 * leaves key files of both identities in a repository still empty: the next openReplica finishes, before
 * anything is copied. A writer that opened the old keys fails at its next lock (Repository.lock checks
 * its key file is still there) instead of writing ids that would not verify. Returns whether keys changed.
 */
async function adoptChunkIdentity(primary: Repository, replica: Repository, passphrase: Buffer): Promise<boolean> {
  const { storage } = replica;
  const c = replica.config.chunker;
  const p = primary.config.chunker;
  if (c.min !== p.min || c.avg !== p.avg || c.max !== p.max) return false;
  if (!(await holdsNothing(storage)) || !(await mayDeleteKeyFiles(storage))) return false;
  const lock = await replica.lock(true);
  return whileHolding(lock, async () => {
    if (!(await holdsNothing(storage))) return false;
    const stale: string[] = [];
    let adopted = false;
    let params: ScryptParams | undefined;
    for (const name of await keyFileNames(storage)) {
      const file = parseKeyFile(name, await storage.get(name));
      const keys = await unwrapMasterKeys(file, passphrase).catch(() => undefined);
      // Another passphrase's key file could not be rewrapped: keep the replica's own identity.
      if (!keys?.encryption.equals(replica.keys.encryption)) return false;
      if (keys.chunkId.equals(primary.keys.chunkId) && keys.chunkerSeed.equals(primary.keys.chunkerSeed))
        adopted = true;
      else stale.push(name);
      params ??= { N: file.N, r: file.r, p: file.p };
    }
    if (stale.length === 0) return false;
    if (!adopted) {
      const keys = replicaMasterKeys(primary.keys, replica.keys.encryption);
      const keyFile = await wrapMasterKeys(keys, passphrase, params);
      await storage.put(blobNames.key(randomId()), Buffer.from(JSON.stringify(keyFile)));
    }
    for (const name of stale) await storage.delete(name);
    return true;
  });
}

async function holdsNothing(storage: Storage): Promise<boolean> {
  for (const prefix of [prefixes.snapshots, prefixes.index, prefixes.data])
    for await (const _ of storage.list(prefix)) return false;
  return true;
}

/**
 * Whether the replica's credentials may delete key files (deleting one that does not exist asks the
 * storage without changing anything): without that, adopting would leave key files of two identities.
 */
async function mayDeleteKeyFiles(storage: Storage): Promise<boolean> {
  try {
    await storage.delete(blobNames.key(randomId()));
    return true;
  } catch (error) {
    if (isCode(error, 'AccessDenied')) return false;
    throw error;
  }
}

async function keyFileNames(storage: Storage): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of storage.list(prefixes.keys)) names.push(blob.name);
  return names;
}
