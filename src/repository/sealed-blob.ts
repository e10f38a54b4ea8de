import { withContext } from '../errors.ts';
import { open, seal } from './crypto.ts';
import type { Storage } from './storage/storage.ts';

/** Small structured blobs (config, index, snapshots), sealed whole with the blob's name as aad: no packs, no chunks. */
export async function putSealed(storage: Storage, key: Buffer, name: string, plain: Buffer): Promise<void> {
  await storage.put(name, seal(key, plain, Buffer.from(name)));
}

/** Opens a sealed blob and decodes its plaintext; any failure names the blob and the storage. */
export async function getSealed<T>(
  storage: Storage,
  key: Buffer,
  name: string,
  decode: (plain: Buffer) => T | Promise<T>,
): Promise<T> {
  try {
    return await decode(open(key, await storage.get(name), Buffer.from(name), name));
  } catch (error) {
    throw withContext(`reading ${name} from ${storage.description}`, error);
  }
}

export async function putEncryptedJson(storage: Storage, key: Buffer, name: string, value: unknown): Promise<void> {
  await putSealed(storage, key, name, Buffer.from(JSON.stringify(value)));
}

export async function getEncryptedJson<T>(storage: Storage, key: Buffer, name: string): Promise<T> {
  return getSealed(storage, key, name, (plain) => JSON.parse(plain.toString('utf8')) as T);
}
