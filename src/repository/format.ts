import { createHash, randomBytes } from 'node:crypto';

/**
 * Names and constants of the repository format (docs/repository-format.md). New repositories are written at
 * `FORMAT_VERSION`; a reader refuses a repository whose config version it does not know.
 */
export const FORMAT_VERSION = 2;
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];

export type ChunkType = 'data' | 'tree';
export const CHUNK_TYPES: readonly ChunkType[] = ['data', 'tree'];

/** A chunk id: HMAC-SHA256(chunk id key, chain id || plaintext), hex. */
export type ChunkId = string & { readonly __chunkId: unique symbol };
/** A pack id: SHA-256 of the pack's bytes, hex. */
export type PackId = string & { readonly __packId: unique symbol };
/** A snapshot id: random, hex. */
export type SnapshotId = string & { readonly __snapshotId: unique symbol };
/** A chain id: random, set by a full backup, inherited by its incrementals. */
export type ChainId = string & { readonly __chainId: unique symbol };

export const blobNames = {
  config: 'config',
  key: (id: string) => `keys/${id}`,
  pack: (id: PackId) => `data/${id.slice(0, 2)}/${id}`,
  index: (id: string) => `index/${id}`,
  snapshot: (id: SnapshotId) => `snapshots/${id}`,
  lock: (id: string) => `locks/${id}`,
} as const;

export const prefixes = { keys: 'keys/', data: 'data/', index: 'index/', snapshots: 'snapshots/', locks: 'locks/' };

export function randomId(): string {
  return randomBytes(32).toString('hex');
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The id at the end of a blob name (`data/ab/abcd…` → `abcd…`). */
export function idOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}
