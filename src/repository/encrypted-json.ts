import { withContext } from '../errors.ts';
import { open, seal } from './crypto.ts';
import type { Storage } from './storage/storage.ts';

/** Small structured blobs (config, index, snapshots): JSON sealed with the blob's name as aad. */
export async function putEncryptedJson(storage: Storage, key: Buffer, name: string, value: unknown): Promise<void> {
  await storage.put(name, seal(key, Buffer.from(JSON.stringify(value)), Buffer.from(name)));
}

export async function getEncryptedJson<T>(storage: Storage, key: Buffer, name: string): Promise<T> {
  try {
    const plain = open(key, await storage.get(name), Buffer.from(name), name);
    return JSON.parse(plain.toString('utf8')) as T;
  } catch (error) {
    throw withContext(`reading ${name} from ${storage.description}`, error);
  }
}
