/**
 * The storage layer: a flat namespace of immutable blobs. Every backend (file, s3, azblob) keeps these
 * promises, checked by one conformance suite (storage.conformance.ts):
 *
 * - `put` is atomic: a reader sees the whole blob or none of it, never a part (an interrupted upload
 *   leaves nothing visible under `name`).
 * - Blobs are written once; a repository never overwrites a blob with different content, except for
 *   `locks/` blobs, which may be replaced.
 * - `get` of a missing blob throws TidemarkError code NotFound; `delete` of a missing blob succeeds.
 * - `get` with a range returns exactly `length` bytes from `offset`; a range reaching past the end throws
 *   InvalidArgument.
 * - `list(prefix)` yields every blob whose name starts with prefix, each exactly once, in any order.
 * - Names are relative paths of [a-z0-9/_.-]; `/` separates folders. No name is a folder of another (`a` and
 *   `a/b` never both exist), because the file backend keeps folders as directories.
 * - Errors are TidemarkErrors: NotFound, AccessDenied (bad credentials, denied), ContainerMissing (no
 *   such bucket/container/directory), Transient (worth retrying: timeouts, 5xx, throttling); messages
 *   name the backend (`description`) and the blob.
 * - `putStream` writes a blob of unknown length from a stream, as atomically as `put`, and says how many bytes it
 *   wrote; the blob is readable by the storage's owner only (exports put plaintext there).
 * - `presign` gives a link that reads a blob, without other credentials, for `expiresInSeconds` (S3 presigned
 *   GET, Azure SAS); it downloads as an attachment named after the blob's last folder part. The file backend has
 *   none: whoever may read the blob reads its `location`.
 * - `location` is where a blob is for someone who reads the storage directly: `s3://bucket/prefix/name`, a path.
 * - Backends do not retry; retrying.ts wraps them (openStorage in url.ts does).
 */
import { Readable } from 'node:stream';
import { type ErrorCode, TidemarkError } from '../../errors.ts';

export interface BlobInfo {
  name: string;
  size: number;
}

/** Something an interrupted put left behind that is not a blob (a temporary file), so `list` never shows it. */
export interface Leftover {
  /** Where it is, relative to the storage, for messages. */
  name: string;
  size: number;
  modified: Date;
  remove(): Promise<void>;
}

export interface Storage {
  /** Where this storage points, for messages and logs, without credentials: `s3://bucket/prefix`. */
  readonly description: string;
  get(name: string, range?: { offset: number; length: number }): Promise<Buffer>;
  put(name: string, data: Buffer): Promise<void>;
  /** Size of a blob, or undefined when it does not exist. */
  stat(name: string): Promise<BlobInfo | undefined>;
  list(prefix: string): AsyncIterable<BlobInfo>;
  delete(name: string): Promise<void>;
  /** Creates the bucket/container/directory if missing (used by `repo init` only). */
  ensureContainer(): Promise<void>;
  /** Leftovers of interrupted puts, for backends whose puts can leave any (housekeeping.ts removes old ones). */
  leftovers?(): AsyncIterable<Leftover>;
  // Every backend has putStream and location, S3 and Azure presign (the conformance suite holds them to it);
  // wrappers made for one test may lack them.
  /** Writes `name` from a stream of unknown length; returns its size. */
  putStream?(name: string, data: Readable, options?: { contentType?: string }): Promise<number>;
  /** A link that reads `name` without other credentials for `expiresInSeconds`; absent for the file backend. */
  presign?(name: string, expiresInSeconds: number): Promise<string>;
  /** Where `name` is for someone who reads the storage directly. */
  location?(name: string): string;
}

/** An error that names the storage, the operation and the blob (or prefix) it was about. */
export function storageError(
  storage: Pick<Storage, 'description'>,
  code: ErrorCode,
  operation: string,
  name: string,
  reason: string,
  cause?: unknown,
): TidemarkError {
  return new TidemarkError(code, `${storage.description}: ${operation}${name ? ` ${name}` : ''}: ${reason}`, { cause });
}

/** A ranged get that reaches past the end of the blob (InvalidArgument, as the contract says). */
export function rangePastTheEnd(
  storage: Pick<Storage, 'description'>,
  name: string,
  range: { offset: number; length: number },
  available: number,
): TidemarkError {
  return storageError(
    storage,
    'InvalidArgument',
    'get',
    name,
    `range ${range.offset}+${range.length} is past the end (${available} bytes there)`,
  );
}

/**
 * A ranged get of nothing, which S3 and Azure would read as "the whole blob": answered from the blob's size
 * (NotFound when it is missing, InvalidArgument past the end).
 */
export async function emptyRange(
  storage: Pick<Storage, 'description' | 'stat'>,
  name: string,
  range: { offset: number; length: number },
): Promise<Buffer> {
  const info = await storage.stat(name);
  if (!info) throw storageError(storage, 'NotFound', 'get', name, 'not found');
  if (range.offset > info.size) throw rangePastTheEnd(storage, name, range, info.size);
  return Buffer.alloc(0);
}

/** `attachment; filename="…"` naming the blob's last folder part, for links that download it. */
export function attachmentOf(name: string): string {
  return `attachment; filename="${name.slice(name.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_')}"`;
}

/** `data` as it passes through, counted, for streamed puts that must say how many bytes they wrote. */
export function counted(data: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  async function* count(): AsyncGenerator<Buffer> {
    for await (const chunk of data) {
      bytes += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { stream: Readable.from(count(), { objectMode: false }), bytes: () => bytes };
}
