import { isCode, TidemarkError, withContext } from '../errors.ts';
import { ChunkStore, type ChunkStoreOptions } from './chunk-store.ts';
import { validateParams } from './chunker/fastcdc.ts';
import { DEFAULT_SCRYPT, type ScryptParams } from './crypto.ts';
import { getEncryptedJson, putEncryptedJson } from './encrypted-json.ts';
import { blobNames, FORMAT_VERSION, idOf, prefixes, randomId, type SnapshotId } from './format.ts';
import { ChunkIndex, type IndexFile, liveIndexFiles } from './index.ts';
import { generateMasterKeys, type KeyFile, type MasterKeys, unwrapMasterKeys, wrapMasterKeys } from './keys.ts';
import { acquireLock, type Lock, type LockOptions } from './lock.ts';
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
}

/** An opened repository: keys, config and the loaded index over one storage. */
export class Repository {
  private loadedIndex = new ChunkIndex();
  private loadedIndexFiles = new Set<string>();

  private constructor(
    readonly storage: Storage,
    readonly keys: MasterKeys,
    readonly config: RepositoryConfig,
  ) {}

  get index(): ChunkIndex {
    return this.loadedIndex;
  }

  /** Every index file found when the index was loaded, live or superseded, by id (prune replaces them all). */
  get indexFiles(): Set<string> {
    return this.loadedIndexFiles;
  }

  static async init(storage: Storage, passphrase: Buffer, options: InitOptions = {}): Promise<Repository> {
    await storage.ensureContainer();
    if (await storage.stat(blobNames.config))
      throw new TidemarkError('InvalidArgument', `${storage.description} already holds a repository`);
    const keys = generateMasterKeys();
    const config: RepositoryConfig = {
      version: FORMAT_VERSION,
      id: randomId(),
      chunker: validateParams(options.chunker ?? {}),
      created: new Date().toISOString(),
    };
    const keyFile = await wrapMasterKeys(keys, passphrase, options.scrypt ?? DEFAULT_SCRYPT);
    await storage.put(blobNames.key(randomId()), Buffer.from(JSON.stringify(keyFile)));
    await putEncryptedJson(storage, keys.encryption, blobNames.config, config);
    return new Repository(storage, keys, config);
  }

  static async open(storage: Storage, passphrase: Buffer): Promise<Repository> {
    const keyNames: string[] = [];
    for await (const blob of storage.list(prefixes.keys)) keyNames.push(blob.name);
    if (keyNames.length === 0)
      throw new TidemarkError('NotFound', `${storage.description} holds no repository (no keys/); run \`repo init\``);
    let keys: MasterKeys | undefined;
    let lastError: unknown;
    for (const name of keyNames) {
      try {
        keys = await unwrapMasterKeys(JSON.parse((await storage.get(name)).toString('utf8')) as KeyFile, passphrase);
        break;
      } catch (error) {
        lastError = error;
      }
    }
    if (!keys) throw withContext(`opening ${storage.description}`, lastError);
    const config = await getEncryptedJson<RepositoryConfig>(storage, keys.encryption, blobNames.config);
    if (config.version !== FORMAT_VERSION)
      throw new TidemarkError(
        'Unsupported',
        `${storage.description} has repository format version ${config.version}; this tidemark reads version ${FORMAT_VERSION}`,
      );
    return Repository.reopen(new Repository(storage, keys, config));
  }

  /** The same repository with its index read again (after others may have written). */
  static async reopen(repository: Repository): Promise<Repository> {
    const fresh = new Repository(repository.storage, repository.keys, repository.config);
    await fresh.loadIndex();
    return fresh;
  }

  /** Reads the index again; chunk stores made before keep the index they were given. */
  private async loadIndex(): Promise<void> {
    const files = new Map<string, IndexFile>();
    const names: string[] = [];
    for await (const blob of this.storage.list(prefixes.index)) names.push(blob.name);
    await mapLimit(names, 8, async (name) => {
      files.set(idOf(name), await getEncryptedJson<IndexFile>(this.storage, this.keys.encryption, name));
    });
    const index = new ChunkIndex();
    for (const id of liveIndexFiles(files)) index.addFile(files.get(id) as IndexFile);
    this.loadedIndex = index;
    this.loadedIndexFiles = new Set(files.keys());
  }

  chunkStore(options?: ChunkStoreOptions): ChunkStore {
    return new ChunkStore(this.storage, this.keys, this.index, options);
  }

  async saveIndex(file: IndexFile): Promise<string> {
    const id = randomId();
    await putEncryptedJson(this.storage, this.keys.encryption, blobNames.index(id), file);
    this.indexFiles.add(id);
    return id;
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

  /** Every snapshot, newest first. One forgotten while they are read is left out, not an error. */
  async snapshots(): Promise<Snapshot[]> {
    const names: string[] = [];
    for await (const blob of this.storage.list(prefixes.snapshots)) names.push(blob.name);
    const snapshots = await mapLimit(names, 8, (name) =>
      this.loadSnapshot(idOf(name) as SnapshotId).catch((error: unknown) => {
        if (isCode(error, 'NotFound')) return undefined;
        throw error;
      }),
    );
    return snapshots.filter((s): s is Snapshot => s !== undefined).sort(byTimeDescending);
  }

  /** A snapshot by id, unique id prefix, or `latest` (optionally of one source). */
  async findSnapshot(ref: string, source?: string): Promise<Snapshot> {
    const all = (await this.snapshots()).filter((s) => !source || s.source === source);
    const found = ref === 'latest' ? all.slice(0, 1) : all.filter((s) => s.id.startsWith(ref));
    if (found.length === 1 && found[0]) return found[0];
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
      await this.loadIndex();
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
    return lock;
  }
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
