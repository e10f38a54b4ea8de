// Races between prune and the commands that read or write data, made deterministic by running the prune
// from inside a storage call of the other command (SPEC "Repository format": prune is safe against a
// concurrent backup; issue 10 findings 2 and 3).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeTree } from '../../test/harness/fixtures.ts';
import { isCode } from '../errors.ts';
import { backupTree } from './backup.ts';
import { check } from './check.ts';
import { copySnapshots } from './copy.ts';
import { type ChainId, prefixes, type SnapshotId } from './format.ts';
import { forget, prune } from './prune.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import type { Snapshot } from './snapshot.ts';
import type { Storage } from './storage/storage.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-locking-'));
after(() => rm(root, { recursive: true, force: true }));
const passphrase = Buffer.from('locking test');
let counter = 0;
const path = (name: string) => join(root, `${name}-${++counter}`);

async function newRepository(): Promise<Repository> {
  return testRepository(path('repo'), passphrase);
}

/** A storage that runs `hook` once, before the first call of `operation` on a blob under `prefix`. */
function withHook(storage: Storage, operation: 'get' | 'put', prefix: string, hook: () => Promise<void>): Storage {
  let ran = false;
  const original = storage[operation].bind(storage) as (name: string, arg?: unknown) => Promise<unknown>;
  return Object.create(storage, {
    [operation]: {
      value: async (name: string, arg?: unknown) => {
        if (!ran && name.startsWith(prefix)) {
          ran = true;
          await hook();
        }
        return original(name, arg);
      },
    },
  });
}

/**
 * A chain of two snapshots: `old` holds `keep.txt` and `gone.txt`, `current` (incremental) only
 * `keep.txt`. With `old` forgotten, the pack of `old` is mostly unused, so a prune repacks `keep.txt`'s
 * chunk and deletes that pack: whatever reads the chunk at its old place fails.
 */
async function repackableChain(repository: Repository): Promise<{ source: string; current: Snapshot }> {
  const source = path('source');
  await mkdir(source);
  await writeFile(join(source, 'keep.txt'), 'kept content');
  await writeFile(join(source, 'gone.txt'), 'content of a file deleted later');
  const old = await backupTree(repository, source, { type: 'full', source: 'docs' });
  await rm(join(source, 'gone.txt'));
  const current = await backupTree(repository, source, { type: 'incremental', parent: old, source: 'docs' });
  await forget(repository, [old.id as SnapshotId]);
  return { source, current };
}

async function assertRestores(repository: Repository, snapshot: Snapshot, source: string): Promise<void> {
  const reopened = await Repository.open(repository.storage, passphrase);
  assert.deepEqual((await check(reopened, { readData: true })).errors, []);
  const target = path('restored');
  // By id: a copy keeps the id but not the root (chunk ids differ between repositories).
  await restoreTree(reopened, await reopened.findSnapshot(snapshot.id), target);
  assert.deepEqual(await describeTree(target), await describeTree(source));
}

/** A full backup of one file and an incremental after its content changed (`version one`, `version two`). */
async function twoVersions(): Promise<{ repository: Repository; source: string; first: Snapshot; second: Snapshot }> {
  const repository = await newRepository();
  const source = path('source');
  await mkdir(source);
  const file = join(source, 'data.txt');
  await writeFile(file, 'version one');
  const first = await backupTree(repository, source, { type: 'full', source: 'docs' });
  await writeFile(file, 'version two');
  await utimes(file, 2_000_000, 2_000_000);
  const second = await backupTree(repository, source, { type: 'incremental', parent: first, source: 'docs' });
  return { repository, source, first, second };
}

test('a backup whose index was loaded before a prune stores again the chunks that prune deleted', async () => {
  const { repository, source, first, second } = await twoVersions();

  // The backup process loads the index (which lists `version two`); meanwhile `second` is forgotten and pruned.
  const backupProcess = await Repository.open(repository.storage, passphrase);
  await forget(repository, [second.id as SnapshotId]);
  await prune(await Repository.open(repository.storage, passphrase));

  const third = await backupTree(backupProcess, source, { type: 'incremental', parent: first, source: 'docs' });
  assert.equal(third.summary.newChunks, 2, 'the content chunk and the root tree are stored again');
  await assertRestores(repository, third, source);
});

test('an incremental whose parent was forgotten and pruned before it took its lock reads every file again', async () => {
  const repository = await newRepository();
  const { source, current } = await repackableChain(repository);
  const backupProcess = await Repository.open(repository.storage, passphrase);
  await forget(repository, [current.id as SnapshotId]);
  await prune(await Repository.open(repository.storage, passphrase));

  const next = await backupTree(backupProcess, source, { type: 'incremental', parent: current, source: 'docs' });
  assert.equal(next.parent, current.id, 'it stays in its chain');
  await assertRestores(repository, next, source);
});

test('a prune while a backup writes its packs is refused; the backup completes and restores', async () => {
  const repository = await newRepository();
  const { source } = await repackableChain(repository);
  await writeFile(join(source, 'new.txt'), 'written by the racing backup');
  let refused: unknown;
  const racing = withHook(repository.storage, 'put', prefixes.data, async () => {
    refused = await prune(await Repository.open(repository.storage, passphrase)).catch((error: unknown) => error);
  });
  const snapshot = await backupTree(await Repository.open(racing, passphrase), source, {
    type: 'full',
    source: 'docs',
  });
  assert.ok(isCode(refused, 'Locked'), `prune was refused: ${refused}`);
  await assertRestores(repository, snapshot, source);
});

test('a prune during a restore is refused, or with a wait runs once the restore is done', async () => {
  const repository = await newRepository();
  const { source, current } = await repackableChain(repository);

  let refused: unknown;
  const refusing = withHook(repository.storage, 'get', prefixes.data, async () => {
    refused = await prune(await Repository.open(repository.storage, passphrase)).catch((error: unknown) => error);
  });
  const first = path('restored');
  await restoreTree(await Repository.open(refusing, passphrase), current, first);
  assert.ok(isCode(refused, 'Locked'), `prune was refused: ${refused}`);
  assert.deepEqual(await describeTree(first), await describeTree(source));

  const events: string[] = [];
  let waiting: Promise<unknown> | undefined;
  const waitingStorage = withHook(repository.storage, 'get', prefixes.data, async () => {
    waiting = prune(await Repository.open(repository.storage, passphrase), { lockWaitMs: 30_000 }).then((report) => {
      events.push('pruned');
      return report;
    });
  });
  const second = path('restored');
  await restoreTree(await Repository.open(waitingStorage, passphrase), current, second);
  events.push('restored');
  const report = await waiting;
  assert.deepEqual(events, ['restored', 'pruned']);
  assert.equal((report as { repackedPacks: number }).repackedPacks, 1, 'the prune did its work after waiting');
  assert.deepEqual(await describeTree(second), await describeTree(source));
  await assertRestores(repository, current, source);
});

test('a restore started while a prune runs waits for the prune, then restores what the prune left', async () => {
  const repository = await newRepository();
  const { source, current } = await repackableChain(repository);
  const events: string[] = [];
  let restoring: Promise<void> | undefined;
  const target = path('restored');
  const pruning = withHook(repository.storage, 'get', prefixes.data, async () => {
    restoring = restoreTree(await Repository.open(repository.storage, passphrase), current, target).then(() => {
      events.push('restored');
    });
  });
  const report = await prune(await Repository.open(pruning, passphrase));
  events.push('pruned');
  await restoring;
  assert.deepEqual(events, ['pruned', 'restored']);
  assert.equal(report.repackedPacks, 1, 'the pack the restore would have read was repacked');
  assert.deepEqual(await describeTree(target), await describeTree(source));
});

test('a prune of the source during a copy is refused; the copy restores', async () => {
  const repository = await newRepository();
  const { source, current } = await repackableChain(repository);
  const destination = await newRepository();
  let refused: unknown;
  const racing = withHook(repository.storage, 'get', prefixes.data, async () => {
    refused = await prune(await Repository.open(repository.storage, passphrase)).catch((error: unknown) => error);
  });
  await copySnapshots(await Repository.open(racing, passphrase), destination, [current]);
  assert.ok(isCode(refused, 'Locked'), `prune was refused: ${refused}`);
  await assertRestores(destination, current, source);
});

test('a copy whose destination index was loaded before a prune there uploads again what the prune deleted', async () => {
  const { repository, source, first, second } = await twoVersions();
  const destination = await newRepository();
  await copySnapshots(repository, destination, [second, first]);

  // The copying process opens the destination; meanwhile `second` is forgotten there and pruned.
  const copyingProcess = await Repository.open(destination.storage, passphrase);
  await forget(destination, [second.id as SnapshotId]);
  await prune(await Repository.open(destination.storage, passphrase));

  const report = await copySnapshots(repository, copyingProcess, [second]);
  assert.deepEqual(report.copied, [second.id]);
  await assertRestores(destination, second, source);
});

test('a lock reads the index again when index files came or went, or chunks were added and not saved', async () => {
  const repository = await newRepository();
  const other = await Repository.open(repository.storage, passphrase);
  const chain = 'ab'.repeat(16) as ChainId;
  // Another writer's index file: seen by the next lock.
  const theirs = other.chunkStore();
  const { id: saved } = await theirs.put(chain, 'data', Buffer.from('saved by another writer'));
  await other.saveIndex(await theirs.flush());
  await (await repository.lock(false)).release();
  assert.equal(repository.index.has(saved), true);
  // Packs uploaded whose index file was never written (a failed backup): not in the index the lock reads.
  const ours = repository.chunkStore();
  const { id: unsaved } = await ours.put(chain, 'data', Buffer.from('uploaded, never indexed'));
  await ours.flush();
  assert.equal(repository.index.has(unsaved), true);
  await (await repository.lock(false)).release();
  assert.equal(repository.index.has(unsaved), false);
  assert.equal(repository.index.has(saved), true);
});
