import { type ErrorCode, isCode, TidemarkError } from '../errors.ts';
import { ChunkStore, type ChunkStoreOptions } from './chunk-store.ts';
import { validateParams } from './chunker/fastcdc.ts';
import { DEFAULT_SCRYPT, type ScryptParams } from './crypto.ts';
import {
  blobNames,
  FORMAT_VERSION,
  idOf,
  prefixes,
  READABLE_FORMAT_VERSIONS,
  randomId,
  type SnapshotId,
} from './format.ts';
import { ChunkIndex, liveIndexFiles } from './index.ts';
import { decodeIndexFile, encodeIndexFile, type IndexFile } from './index-file.ts';
import {
  generateMasterKeys,
  type KeyFile,
  type MasterKeys,
  replicaMasterKeys,
  unwrapMasterKeys,
  wrapMasterKeys,
} from './keys.ts';
import { acquireLock, type Lock, type LockOptions } from './lock.ts';
import { getEncryptedJson, getSealed, putEncryptedJson, putSealed } from './sealed-blob.ts';
import { byTimeDescending, type Snapshot } from './snapshot.ts';
import type { Storage } from './storage/storage.ts';

/** `config` (encrypted JSON): what a reader must know before reading anything else. */
export interface RepositoryConfig {
  version: number;
  id: string;
  chunker: { min: number; avg: number; max: number };
  created: string;
}

export interface InitOptions {
  chunker?: Partial<RepositoryConfig['chunker']>;
  scrypt?: ScryptParams;
  /** A replica of this repository: takes its chunk-id key, chunker seed and sizes (not its encryption key). */
  chunkIdentityOf?: Repository;
}

/** A blob that could not be read (damaged, or failing to read): only what depends on it is affected. */
export interface DamagedObject {
  name: string;
  reason: string;
  /** Corrupt for damage; a storage failure (Transient, AccessDenied) keeps its own code. */
  code: ErrorCode;
}

/** Every snapshot blob: those that read, newest first, and those that do not. */
export interface SnapshotListing {
  snapshots: Snapshot[];
  damaged: DamagedObject[];
}

/** An opened repository: keys, config and the loaded index over one storage. */
export class Repository {
  private loadedIndex = new ChunkIndex();
  private loadedIndexFiles = new Set<string>();
  private loadedDamagedIndexFiles: DamagedObject[] = [];
  /** Packs of the index as loaded: a chunk store adding to it since makes the next load read every file. */
  private loadedPacks = -1;

  private constructor(
    readonly storage: Storage,
    readonly keys: MasterKeys,
    readonly config: RepositoryConfig,
    /** The key file the keys came from (`keys/<id>`): when it is gone, the keys may have changed. */
    private readonly keyName: string,
  ) {}

  /**
   * Whether chunk ids and boundaries here are those of `other` (same id key, chunker seed and sizes): a
   * chunk then has the same id in both, and a copy needs no re-identification.
   */
  sharesChunkIdentityWith(other: Repository): boolean {
    const [a, b] = [this.config.chunker, other.config.chunker];
    return (
      this.keys.chunkId.equals(other.keys.chunkId) &&
      this.keys.chunkerSeed.equals(other.keys.chunkerSeed) &&
      a.min === b.min &&
      a.avg === b.avg &&
      a.max === b.max
    );
  }

  get index(): ChunkIndex {
    return this.loadedIndex;
  }

  /** Every index file found when the index was loaded, live or superseded, by id (prune replaces them all). */
  get indexFiles(): Set<string> {
    return this.loadedIndexFiles;
  }

  /** Index files that could not be read when the index was loaded: the packs they list look unindexed. */
  get damagedIndexFiles(): DamagedObject[] {
    return this.loadedDamagedIndexFiles;
  }

  static async init(storage: Storage, passphrase: Buffer, options: InitOptions = {}): Promise<Repository> {
    await storage.ensureContainer();
    if (await storage.stat(blobNames.config))
      throw new TidemarkError('InvalidArgument', `${storage.description} already holds a repository`);
    const primary = options.chunkIdentityOf;
    const keys = primary ? replicaMasterKeys(primary.keys) : generateMasterKeys();
    const config: RepositoryConfig = {
      version: FORMAT_VERSION,
      id: randomId(),
      chunker: primary ? { ...primary.config.chunker } : validateParams(options.chunker ?? {}),
      created: new Date().toISOString(),
    };
    const keyFile = await wrapMasterKeys(keys, passphrase, options.scrypt ?? DEFAULT_SCRYPT);
    const keyName = blobNames.key(randomId());
    await storage.put(keyName, Buffer.from(JSON.stringify(keyFile)));
    await putEncryptedJson(storage, keys.encryption, blobNames.config, config);
    return new Repository(storage, keys, config, keyName);
  }

  static async open(storage: Storage, passphrase: Buffer): Promise<Repository> {
    const keyNames: string[] = [];
    for await (const blob of storage.list(prefixes.keys)) keyNames.push(blob.name);
    if (keyNames.length === 0)
      throw new TidemarkError('NotFound', `${storage.description} holds no repository (no keys/); run \`repo init\``);
    const { keys, keyName } = await openAnyKey(storage, keyNames, passphrase);
    const config = await getEncryptedJson<RepositoryConfig>(storage, keys.encryption, blobNames.config);
    if (!READABLE_FORMAT_VERSIONS.includes(config.version))
      throw new TidemarkError(
        'Unsupported',
        `${storage.description} has repository format version ${config.version}; this tidemark reads versions ${READABLE_FORMAT_VERSIONS.join(' and ')}`,
      );
    return Repository.reopen(new Repository(storage, keys, config, keyName));
  }

  /** The same repository with its index read again (after others may have written). */
  static async reopen(repository: Repository): Promise<Repository> {
    const fresh = new Repository(repository.storage, repository.keys, repository.config, repository.keyName);
    await fresh.loadIndex();
    return fresh;
  }

  /** Reads the index again; chunk stores made before keep the index they were given. */
  private async loadIndex(): Promise<void> {
    const files = new Map<string, IndexFile>();
    const damaged: DamagedObject[] = [];
    const names: string[] = [];
    for await (const blob of this.storage.list(prefixes.index)) names.push(blob.name);
    // Index files never change under their name: the same ones, all read before, and nothing added since, are the
    // index loaded (a backup locks right after opening: reading a large index twice cost it seconds).
    if (
      this.loadedPacks === this.loadedIndex.packCount &&
      names.length === this.loadedIndexFiles.size &&
      names.every((name) => this.loadedIndexFiles.has(idOf(name)))
    )
      return;
    await mapLimit(names, 8, async (name) => {
      try {
        files.set(idOf(name), await this.readIndexFile(name));
      } catch (error) {
        // Deleted meanwhile (a prune superseded it) is not damage; anything else affects only its packs.
        if (!isCode(error, 'NotFound')) damaged.push(damageOf(name, error));
      }
    });
    this.loadedDamagedIndexFiles = damaged;
    const index = new ChunkIndex();
    for (const id of liveIndexFiles(files)) index.addFile(files.get(id) as IndexFile);
    this.loadedIndex = index;
    this.loadedIndexFiles = new Set(files.keys());
    this.loadedPacks = index.packCount;
  }

  chunkStore(options?: ChunkStoreOptions): ChunkStore {
    return new ChunkStore(this.storage, this.keys, this.index, options);
  }

  /** Writes an index file in this repository's format version (JSON in version 1, binary since 2). */
  async saveIndex(file: IndexFile): Promise<string> {
    const id = randomId();
    await putSealed(
      this.storage,
      this.keys.encryption,
      blobNames.index(id),
      await encodeIndexFile(file, this.config.version),
    );
    this.indexFiles.add(id);
    return id;
  }

  /** Reads `index/<id>` of either encoding. */
  async readIndexFile(name: string): Promise<IndexFile> {
    return getSealed(this.storage, this.keys.encryption, name, (plain) => decodeIndexFile(plain, name));
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await putEncryptedJson(this.storage, this.keys.encryption, blobNames.snapshot(snapshot.id), snapshot);
  }

  async loadSnapshot(id: SnapshotId): Promise<Snapshot> {
    return getEncryptedJson<Snapshot>(this.storage, this.keys.encryption, blobNames.snapshot(id));
  }

  /** Whether a snapshot is still there (not forgotten). */
  async hasSnapshot(id: SnapshotId | string): Promise<boolean> {
    return (await this.storage.stat(blobNames.snapshot(id as SnapshotId))) !== undefined;
  }

  /** Throws NotFound when `snapshot` was forgotten since the caller read it (restore, copy). */
  async requireSnapshot(snapshot: Snapshot): Promise<void> {
    if (!(await this.hasSnapshot(snapshot.id)))
      throw new TidemarkError(
        'NotFound',
        `snapshot ${snapshot.id.slice(0, 12)} of ${snapshot.source} was forgotten from ${this.storage.description}`,
      );
  }

  /** Every readable snapshot, newest first (damaged ones are in `snapshotListing`). */
  async snapshots(): Promise<Snapshot[]> {
    return (await this.snapshotListing()).snapshots;
  }

  /**
   * Every snapshot, newest first, and those that cannot be read with the reason: one damaged snapshot
   * never hides the others. One forgotten while they are read is left out, not an error.
   */
  async snapshotListing(): Promise<SnapshotListing> {
    const names: string[] = [];
    for await (const blob of this.storage.list(prefixes.snapshots)) names.push(blob.name);
    const listing: SnapshotListing = { snapshots: [], damaged: [] };
    await mapLimit(names, 8, async (name) => {
      try {
        listing.snapshots.push(await this.loadSnapshot(idOf(name) as SnapshotId));
      } catch (error) {
        if (!isCode(error, 'NotFound')) listing.damaged.push(damageOf(name, error));
      }
    });
    listing.snapshots.sort(byTimeDescending);
    listing.damaged.sort((a, b) => a.name.localeCompare(b.name));
    return listing;
  }

  /** A snapshot by id, unique id prefix, or `latest` (optionally of one source). */
  async findSnapshot(ref: string, source?: string): Promise<Snapshot> {
    const listing = await this.snapshotListing();
    const all = listing.snapshots.filter((s) => !source || s.source === source);
    const found = ref === 'latest' ? all.slice(0, 1) : all.filter((s) => s.id.startsWith(ref));
    if (found.length === 1 && found[0]) return found[0];
    const damaged = ref === 'latest' ? [] : listing.damaged.filter((d) => idOf(d.name).startsWith(ref));
    if (found.length === 0 && damaged.length === 1 && damaged[0])
      throw new TidemarkError(damaged[0].code, `snapshot ${ref} cannot be read: ${damaged[0].reason}`);
    throw new TidemarkError(
      found.length ? 'InvalidArgument' : 'NotFound',
      found.length
        ? `snapshot prefix ${ref} is ambiguous in ${this.storage.description}`
        : `no snapshot ${ref}${source ? ` of ${source}` : ''} in ${this.storage.description}`,
    );
  }

  /** The newest snapshot of `source` taken before `before` (any time when absent). */
  async latestSnapshotOf(source: string, before?: Date): Promise<Snapshot> {
    const found = (await this.snapshots()).find(
      (s) => s.source === source && (!before || Date.parse(s.time) < before.getTime()),
    );
    if (found) return found;
    throw new TidemarkError(
      'NotFound',
      `no snapshot of ${source}${before ? ` taken before ${before.toISOString()}` : ''} in ${this.storage.description}`,
    );
  }

  /**
   * Takes a lock, then reads the index again: what a prune did before is seen, and while a shared lock
   * is held no prune deletes anything the holder reads or writes.
   */
  async lock(exclusive: boolean, options: LockOptions = {}): Promise<Lock> {
    const lock = await acquireLock(this.storage, exclusive, options);
    try {
      await this.requireKeyFile();
      await this.loadIndex();
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
    return lock;
  }

  /**
   * Fails when the key file these keys came from is gone: a replica adopting its primary's chunk
   * identity replaced it (replica.ts), and chunks written with the old id key would not verify.
   */
  private async requireKeyFile(): Promise<void> {
    if (!(await this.storage.stat(this.keyName)))
      throw new TidemarkError(
        'Transient',
        `the keys of ${this.storage.description} changed since it was opened (${this.keyName} is gone); open it again`,
      );
  }
}

/**
 * The master keys from the first key file the passphrase opens; a damaged key file does not stop the
 * others from being tried. When none opens, the error names every key file and why it failed: a key file
 * has no checksum of its own, so damage to its salt or sealed keys looks like a wrong passphrase.
 */
async function openAnyKey(
  storage: Storage,
  names: string[],
  passphrase: Buffer,
): Promise<{ keys: MasterKeys; keyName: string }> {
  const failures: { name: string; error: unknown }[] = [];
  for (const name of names) {
    try {
      return { keys: await unwrapMasterKeys(parseKeyFile(name, await storage.get(name)), passphrase), keyName: name };
    } catch (error) {
      failures.push({ name, error });
    }
  }
  const damaged = failures.filter((f) => !isCode(f.error, 'WrongKey'));
  const tried = names.join(', ');
  if (damaged.length === 0)
    throw new TidemarkError(
      'WrongKey',
      `wrong repository key: the passphrase opens none of the key files of ${storage.description} (${tried}); if the passphrase is right, the key file it belongs to is damaged`,
    );
  const reasons = damaged.map((f) => `${f.name}: ${f.error instanceof Error ? f.error.message : String(f.error)}`);
  // A storage failure keeps its code (an outage is not damage); anything else unexpected is damage.
  const first = damaged[0]?.error;
  throw new TidemarkError(
    first instanceof TidemarkError && first.code !== 'Internal' ? first.code : 'Corrupt',
    `opening ${storage.description}: no key file opens with this passphrase (tried ${tried}); damaged or unreadable: ${reasons.join('; ')}`,
    { cause: damaged[0]?.error },
  );
}

export function parseKeyFile(name: string, bytes: Buffer): KeyFile {
  let file: Partial<KeyFile>;
  try {
    file = JSON.parse(bytes.toString('utf8')) as Partial<KeyFile>;
  } catch {
    throw new TidemarkError('Corrupt', `key file ${name} is damaged: ${bytes.length} bytes of no valid JSON`);
  }
  if (typeof file !== 'object' || file === null || typeof file.salt !== 'string' || typeof file.data !== 'string')
    throw new TidemarkError('Corrupt', `key file ${name} is damaged: its salt or sealed keys are missing`);
  return file as KeyFile;
}

function damageOf(name: string, error: unknown): DamagedObject {
  const code = error instanceof TidemarkError && error.code !== 'Internal' ? error.code : 'Corrupt';
  return { name, reason: error instanceof Error ? error.message : String(error), code };
}

/** Runs `fn` over items with at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
