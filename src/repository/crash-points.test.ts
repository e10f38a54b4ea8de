// Crash-point harness (issue 10, "Must show"): backup, copy and prune run with a simulated crash at every
// storage write and delete in turn, crashing before the call reaches the storage and once it has done its
// work. After each crash a fresh Repository.open (the restarted process) must find: `check --read-data`
// clean, every snapshot restoring byte-identical (those complete before the crash, and the crashed
// operation's own if it got that far), and the next backup and prune succeeding, leaving it clean again.
// Reads are not crash points of their own: a crash at a read leaves what a crash before the next write
// leaves. A crashed process's lock is left behind, naming a dead process (as after a real crash).
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { describeTree, pseudoRandomBuffer } from '../../test/harness/fixtures.ts';
import { backupTree } from './backup.ts';
import { check } from './check.ts';
import { copySnapshots } from './copy.ts';
import { prefixes, type SnapshotId } from './format.ts';
import type { LockFile } from './lock.ts';
import { forget, prune } from './prune.ts';
import { openReplica } from './replica.ts';
import { Repository } from './repository.ts';
import { restoreTree } from './restore.ts';
import { type CrashMode, CrashPoint } from './storage/crashing.ts';
import { FileStorage } from './storage/file.ts';
import type { Storage } from './storage/storage.ts';
import { testRepository } from './testing/repository.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-crash-points-'));
after(() => rm(root, { recursive: true, force: true }));
const passphrase = Buffer.from('crash points');
/** Above the largest pid Linux hands out: a lock of this pid on this host belongs to a dead process. */
const DEAD_PID = 2 ** 22 + 12345;
/** Source directories by snapshot source label; never changed once written. */
const sources = new Map<string, string>();
const base = {
  repository: join(root, 'base-repository'),
  replica: join(root, 'base-replica'),
  sharedReplica: join(root, 'base-shared-replica'),
  probedReplica: join(root, 'base-probed-replica'),
};
let counter = 0;

async function sourceDir(label: string, files: Record<string, string | number>): Promise<void> {
  const dir = join(root, 'sources', label);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    // A number is the size of pseudo-random content seeded by the file name: same name, same bytes.
    await writeFile(join(dir, name), typeof content === 'number' ? await pseudoRandomBuffer(name, content) : content);
  }
  sources.set(label, dir);
}

/**
 * The starting point of every run: chain `a` (a1 full, a2 incremental, a1 forgotten: its pack is mostly
 * dead and gets repacked), chain `b` twice (b1 forgotten: its pack is all dead and gets deleted), a
 * replica with its own chunk identity and one sharing the repository's, each holding a copy of a2, and
 * an empty replica initialised on its own (as the probe does).
 */
before(async () => {
  await sourceDir('a1', { 'f1.bin': 20_000, 'f2.bin': 20_000, 'f3.bin': 20_000, 'sub/notes.txt': 'notes' });
  await sourceDir('a2', { 'f1.bin': 20_000, 'f2-v2.bin': 20_000, 'f4.bin': 20_000, 'sub/notes.txt': 'notes' });
  await sourceDir('a3', { 'f1.bin': 20_000, 'f4.bin': 20_000, 'f6.bin': 30_000, 'sub/notes.txt': 'more notes' });
  await symlink('f1.bin', join(sources.get('a3') as string, 'link'));
  await sourceDir('b', { 'g1.bin': 25_000 });
  const chunker = { min: 1024, avg: 4096, max: 16384 };
  const repository = await testRepository(base.repository, passphrase, { chunker });
  const a1 = await backupTree(repository, dir('a1'), { type: 'full', source: 'a1' });
  const a2 = await backupTree(repository, dir('a2'), { type: 'incremental', parent: a1, source: 'a2' });
  const b1 = await backupTree(repository, dir('b'), { type: 'full', source: 'b' });
  await backupTree(repository, dir('b'), { type: 'full', source: 'b' });
  const replica = await testRepository(base.replica, passphrase, { chunker });
  await copySnapshots(repository, replica, [a2]);
  const shared = await openReplica(repository, new FileStorage(base.sharedReplica), passphrase);
  await copySnapshots(repository, shared, [a2]);
  await testRepository(base.probedReplica, passphrase, { chunker });
  await forget(repository, [a1.id as SnapshotId, b1.id as SnapshotId]);
});

const dir = (label: string) => sources.get(label) as string;

interface Run {
  repository: Storage;
  replica: Storage;
  sharedReplica: Storage;
  probedReplica: Storage;
}

const runNames: (keyof Run)[] = ['repository', 'replica', 'sharedReplica', 'probedReplica'];
const runOf = (storage: (name: keyof Run) => Storage): Run => ({
  repository: storage('repository'),
  replica: storage('replica'),
  sharedReplica: storage('sharedReplica'),
  probedReplica: storage('probedReplica'),
});

interface Options {
  /** The repositories the operation writes to, checked after each crash; default: the repository. */
  writes?: (keyof Run)[];
  modes?: CrashMode[];
  /** Runs on the fresh copy of the base repositories before `complete` is taken (an earlier crash). */
  prepare?: (run: Run) => Promise<void>;
  /** Checks after each crash, once the written repositories are found intact. */
  afterCrash?: (run: Run) => Promise<void>;
}

/** Runs `operation` with a crash at each write or delete in turn, in each mode, until it completes uncrashed. */
async function everyCrashPoint(operation: (run: Run) => Promise<unknown>, options: Options = {}): Promise<number> {
  let points = 0;
  for (const mode of options.modes ?? ['before', 'after']) {
    for (let at = 1; ; at++) {
      const work = join(root, `run-${++counter}`);
      const plain = runOf((name) => new FileStorage(join(work, name)));
      for (const name of runNames) await cp(base[name], join(work, name), { recursive: true });
      await options.prepare?.(plain);
      const complete = Object.fromEntries(
        await Promise.all(runNames.map(async (name) => [name, await snapshotIds(plain[name])])),
      ) as Record<keyof Run, string[]>;

      const crash = new CrashPoint(at, mode);
      const outcome = await operation(runOf((name) => crash.wrap(plain[name]))).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      await crash.settled();
      try {
        if (!crash.crashed) {
          assert.equal(outcome, undefined, 'the operation completes without a crash');
          await rm(work, { recursive: true, force: true });
          break;
        }
        points++;
        assert.match(String(outcome), /simulated crash/, 'the operation failed because of the crash');
        for (const storage of Object.values(plain)) await theProcessIsGone(storage);
        for (const written of options.writes ?? ['repository']) {
          await assertIntact(plain[written], complete[written]);
          await options.afterCrash?.(plain);
          await assertNextBackupAndPruneSucceed(plain[written]);
        }
      } catch (error) {
        throw new Error(`crash at ${crash.writes[at - 1]} (write ${at}, ${mode}): ${(error as Error).message}`, {
          cause: error,
        });
      }
      await rm(work, { recursive: true, force: true });
    }
  }
  return points;
}

async function snapshotIds(storage: Storage): Promise<string[]> {
  return (await (await Repository.open(storage, passphrase)).snapshots()).map((s) => s.id);
}

/** The crashed process's locks now name a dead process (as they would after a real crash on this host). */
async function theProcessIsGone(storage: Storage): Promise<void> {
  for await (const blob of storage.list(prefixes.locks)) {
    const lock = JSON.parse((await storage.get(blob.name)).toString('utf8')) as LockFile;
    await storage.put(blob.name, Buffer.from(JSON.stringify({ ...lock, pid: DEAD_PID })));
  }
}

/** check --read-data is clean; the snapshots complete before are there; every snapshot restores identical. */
async function assertIntact(storage: Storage, complete: string[]): Promise<void> {
  const repository = await Repository.open(storage, passphrase);
  assert.deepEqual((await check(repository, { readData: true })).errors, [], `check of ${storage.description}`);
  const snapshots = await repository.snapshots();
  for (const id of complete)
    assert.ok(
      snapshots.some((s) => s.id === id),
      `snapshot ${id.slice(0, 12)} is still in ${storage.description}`,
    );
  for (const snapshot of snapshots) {
    const target = join(root, `restored-${++counter}`);
    await restoreTree(repository, snapshot, target);
    assert.deepEqual(
      await describeTree(target),
      await describeTree(dir(snapshot.source)),
      `snapshot ${snapshot.id.slice(0, 12)} of ${snapshot.source} restores identical`,
    );
    await rm(target, { recursive: true });
  }
}

async function assertNextBackupAndPruneSucceed(storage: Storage): Promise<void> {
  const repository = await Repository.open(storage, passphrase);
  const parent = (await repository.snapshots()).find((s) => s.source.startsWith('a'));
  await backupTree(repository, dir('a3'), { type: 'incremental', parent, source: 'a3' });
  await prune(await Repository.open(storage, passphrase));
  const after = await Repository.open(storage, passphrase);
  await assertIntact(storage, await snapshotIds(storage));
  assert.equal((await check(after)).unreferencedPacks, 0, `prune left no unreferenced pack in ${storage.description}`);
}

test('backup: a crash at any write or delete loses nothing', async () => {
  const points = await everyCrashPoint(async ({ repository }) => {
    const opened = await Repository.open(repository, passphrase);
    const parent = await opened.latestSnapshotOf('a2');
    await backupTree(opened, dir('a3'), { type: 'incremental', parent, source: 'a3' });
  });
  assert.ok(points >= 8, `${points} crash points`);
});

test('copy: a crash at any write or delete of either repository loses nothing', async () => {
  const points = await everyCrashPoint(
    async ({ repository, replica }) => {
      const from = await Repository.open(repository, passphrase);
      await copySnapshots(from, await Repository.open(replica, passphrase), await from.snapshots());
    },
    { writes: ['repository', 'replica'] },
  );
  assert.ok(points >= 10, `${points} crash points`);
});

test('copy to a replica sharing the chunk identity: a crash at any write or delete loses nothing', async () => {
  const points = await everyCrashPoint(
    async ({ repository, sharedReplica }) => {
      const from = await Repository.open(repository, passphrase);
      const report = await copySnapshots(
        from,
        await Repository.open(sharedReplica, passphrase),
        await from.snapshots(),
      );
      assert.equal(report.identity, 'shared');
    },
    { writes: ['repository', 'sharedReplica'] },
  );
  assert.ok(points >= 10, `${points} crash points`);
});

test('a probed replica adopting the chunk identity: a crash at any write or delete loses nothing, and the next copy finishes the adoption', async () => {
  const copyAll = async ({ repository, probedReplica }: Run) => {
    const from = await Repository.open(repository, passphrase);
    const report = await copySnapshots(
      from,
      await openReplica(from, probedReplica, passphrase),
      await from.snapshots(),
    );
    assert.equal(report.identity, 'shared');
  };
  const points = await everyCrashPoint(copyAll, {
    writes: ['repository', 'probedReplica'],
    afterCrash: async (run) => {
      await copyAll(run);
      const keyFiles: string[] = [];
      for await (const blob of run.probedReplica.list(prefixes.keys)) keyFiles.push(blob.name);
      assert.equal(keyFiles.length, 1, `one key file is left (${keyFiles.join(', ')})`);
    },
  });
  assert.ok(points >= 12, `${points} crash points`);
});

test('prune: a crash at any write or delete loses nothing, and the next prune finishes the work', async () => {
  const points = await everyCrashPoint(async ({ repository }) => {
    const report = await prune(await Repository.open(repository, passphrase));
    assert.equal(report.repackedPacks, 1, 'the base repository has a pack to repack');
    assert.ok(report.deletedPacks >= 2, 'and packs to delete');
  });
  assert.ok(points >= 16, `${points} crash points`);
});

test('prune: a prune crashing after a prune that crashed once its index was written loses nothing either', async () => {
  // A dry run lists the writes of a prune of the base repository; the first crashes after its index is written.
  const work = join(root, `run-${++counter}`);
  await cp(base.repository, work, { recursive: true });
  const dryRun = new CrashPoint(0, 'before');
  await prune(await Repository.open(dryRun.wrap(new FileStorage(work)), passphrase));
  const indexWritten = dryRun.writes.findIndex((w) => w.startsWith(`put ${prefixes.index}`)) + 1;
  assert.ok(indexWritten > 0 && indexWritten < dryRun.writes.length - 2, dryRun.writes.join(', '));

  let points = 0;
  for (let first = indexWritten + 1; first <= dryRun.writes.length; first++) {
    const crashedPrune = async (plain: Run) => {
      const crash = new CrashPoint(first, 'before');
      await assert.rejects(prune(await Repository.open(crash.wrap(plain.repository), passphrase)), /simulated crash/);
      await crash.settled();
      await theProcessIsGone(plain.repository);
    };
    points += await everyCrashPoint(async ({ repository }) => prune(await Repository.open(repository, passphrase)), {
      modes: ['before'],
      prepare: crashedPrune,
    });
  }
  assert.ok(points >= 20, `${points} crash points`);
});
