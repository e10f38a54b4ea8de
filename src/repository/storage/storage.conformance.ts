import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorCode, TidemarkError } from '../../errors.ts';
import { faulty } from './faulty.ts';
import { type RetryEvent, retrying } from './retrying.ts';
import type { BlobInfo, Storage } from './storage.ts';

export interface ConformanceVariants {
  /** A storage whose bucket/container/directory does not exist; a new one each call. */
  missingContainer(): Promise<Storage>;
  /** The storage `open` gives, with wrong credentials; absent for backends that take none. */
  wrongCredentials?(): Promise<Storage>;
  /** A storage whose server does not answer; absent for backends without one. */
  unreachable?(): Promise<Storage>;
}

const MiB = 1024 * 1024;

/**
 * Registers node:test tests checking every promise storage.ts makes. `open` gives a fresh, empty storage whose
 * container exists (e.g. a new prefix in a shared bucket) each time it is called.
 */
export function runStorageConformance(name: string, open: () => Promise<Storage>, variants: ConformanceVariants): void {
  describe(`storage conformance: ${name}`, () => {
    test('put then get returns the same bytes, also for an empty blob', async () => {
      const storage = await open();
      const data = randomBytes(1000);
      await storage.put('packs/a1', data);
      await storage.put('packs/empty', Buffer.alloc(0));
      assert.deepEqual(await storage.get('packs/a1'), data);
      assert.deepEqual(await storage.get('packs/empty'), Buffer.alloc(0));
      assert.deepEqual(await storage.stat('packs/a1'), { name: 'packs/a1', size: 1000 });
      assert.deepEqual(await storage.stat('packs/empty'), { name: 'packs/empty', size: 0 });
    });

    test('a 40 MiB blob round-trips (multipart upload) and ranges read across part boundaries', async () => {
      const storage = await open();
      const data = randomBytes(40 * MiB);
      await storage.put('packs/big', data);
      assert.ok((await storage.get('packs/big')).equals(data));
      assert.deepEqual(await storage.stat('packs/big'), { name: 'packs/big', size: 40 * MiB });
      for (const offset of [8 * MiB - 10, 16 * MiB - 1, 40 * MiB - 20]) {
        const slice = await storage.get('packs/big', { offset, length: 20 });
        assert.ok(slice.equals(data.subarray(offset, offset + 20)), `range at ${offset}`);
      }
    });

    test('a ranged get returns exactly the range; a range past the end is InvalidArgument', async () => {
      const storage = await open();
      const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await storage.put('r', data);
      for (const [offset, length] of [
        [0, 1],
        [10, 20],
        [255, 1],
        [0, 256],
        [256, 0],
        [5, 0],
      ] as const)
        assert.deepEqual(await storage.get('r', { offset, length }), data.subarray(offset, offset + length));
      await rejectsWith(storage.get('r', { offset: 250, length: 10 }), 'InvalidArgument', storage, 'r');
      await rejectsWith(storage.get('r', { offset: 300, length: 1 }), 'InvalidArgument', storage, 'r');
      await rejectsWith(storage.get('missing', { offset: 0, length: 1 }), 'NotFound', storage, 'missing');
      await rejectsWith(storage.get('missing', { offset: 0, length: 0 }), 'NotFound', storage, 'missing');
    });

    test('stat and get of a missing blob: undefined and NotFound, naming the blob and the storage', async () => {
      const storage = await open();
      assert.equal(await storage.stat('packs/missing'), undefined);
      await rejectsWith(storage.get('packs/missing'), 'NotFound', storage, 'packs/missing');
    });

    test('delete removes a blob and succeeds again when it is gone', async () => {
      const storage = await open();
      await storage.put('index/i1', Buffer.from('index'));
      await storage.delete('index/i1');
      assert.equal(await storage.stat('index/i1'), undefined);
      await rejectsWith(storage.get('index/i1'), 'NotFound', storage, 'index/i1');
      await storage.delete('index/i1');
      await storage.delete('never/there');
    });

    test('a lock blob can be replaced, and readers see one whole version or the other', async () => {
      const storage = await open();
      const versions = [Buffer.alloc(64 * 1024, 'a'), Buffer.alloc(32 * 1024, 'b')];
      await storage.put('locks/l1', versions[0] as Buffer);
      await storage.put('locks/l1', versions[1] as Buffer);
      assert.deepEqual(await storage.get('locks/l1'), versions[1]);
      const reads: Buffer[] = [];
      await Promise.all([
        (async () => {
          for (let i = 0; i < 10; i++) await storage.put('locks/l1', versions[i % 2] as Buffer);
        })(),
        (async () => {
          for (let i = 0; i < 10; i++) reads.push(await storage.get('locks/l1'));
        })(),
      ]);
      for (const read of reads)
        assert.ok(
          versions.some((version) => version.equals(read)),
          'a torn read',
        );
    });

    test('names with folders are stored, read, listed and deleted like any other', async () => {
      const storage = await open();
      await storage.put('a/b/c/d.bin', Buffer.from('deep'));
      await storage.put('a/b/e', Buffer.from('shallow'));
      assert.equal((await storage.get('a/b/c/d.bin')).toString(), 'deep');
      assert.deepEqual(await names(storage, 'a/b/'), ['a/b/c/d.bin', 'a/b/e']);
      assert.deepEqual(await names(storage, 'a/b/c/'), ['a/b/c/d.bin']);
      await storage.delete('a/b/c/d.bin');
      assert.deepEqual(await names(storage, 'a/'), ['a/b/e']);
      await storage.put('a/b/c/d.bin', Buffer.from('again'));
      assert.equal((await storage.get('a/b/c/d.bin')).toString(), 'again');
    });

    test('list yields every blob whose name starts with the prefix, once, with its size', async () => {
      const storage = await open();
      const blobs: BlobInfo[] = [
        { name: 'p/1', size: 1 },
        { name: 'p/2', size: 2 },
        { name: 'p/sub/3', size: 3 },
        { name: 'px', size: 4 },
        { name: 'q/5', size: 5 },
      ];
      for (const blob of blobs) await storage.put(blob.name, randomBytes(blob.size));
      const listed = async (prefix: string) => (await collect(storage.list(prefix))).sort(byName);
      assert.deepEqual(await listed('p/'), blobs.slice(0, 3));
      assert.deepEqual(await listed('p'), blobs.slice(0, 4));
      assert.deepEqual(await listed('p/s'), [blobs[2]]);
      assert.deepEqual(await listed(''), blobs);
      assert.deepEqual(await listed('nothing/'), []);
    });

    test('list pages through more than 1000 blobs', async () => {
      const storage = await open();
      const expected = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
      await inParallel(expected, 16, (blob) => storage.put(blob, Buffer.from(blob)));
      const listed = await names(storage, 'many/');
      assert.equal(listed.length, 1100);
      assert.deepEqual(listed, expected);
    });

    test('putStream writes a blob of unknown length, across parts too, says its size, and names where it is', async () => {
      const storage = retrying(await open(), { baseDelayMs: 1 });
      assert.ok(storage.location, 'every backend names locations');
      const big = randomBytes(20 * MiB);
      assert.equal(await putStream(storage, 'exports/t/big.zip', chunked(big, MiB)), big.length);
      assert.ok((await storage.get('exports/t/big.zip')).equals(big));
      assert.equal(await putStream(storage, 'exports/t/small.zip', chunked(Buffer.from('small'), 2)), 5);
      assert.deepEqual(await storage.stat('exports/t/small.zip'), { name: 'exports/t/small.zip', size: 5 });
      const location = storage.location('exports/t/small.zip');
      assert.ok(location.endsWith('/exports/t/small.zip'), location);
      assert.ok(!location.includes('?'), `${location} holds no query (credentials, endpoint)`);
    });

    test('a streamed put whose stream fails midway leaves nothing under its name', async () => {
      const storage = retrying(await open(), { baseDelayMs: 1 });
      const failing = Readable.from(
        (async function* () {
          yield* chunked(randomBytes(9 * MiB), MiB);
          throw new Error('the writer failed');
        })(),
      );
      await assert.rejects(putStream(storage, 'exports/t/failed.zip', failing), /the writer failed/);
      assert.equal(await storage.stat('exports/t/failed.zip'), undefined);
      assert.deepEqual(await names(storage, ''), []);
      assert.deepEqual(
        storage.leftovers ? await collect(storage.leftovers()) : [],
        [],
        'no temporary file, no open upload',
      );
    });

    test('presign gives a link that reads the blob as an attachment until it expires', async (t) => {
      const storage = retrying(await open(), { baseDelayMs: 1 });
      if (!storage.presign) return t.skip('no links: whoever may read the blob reads its location');
      const data = randomBytes(3000);
      await storage.put('exports/t/linked.zip', data);
      const link = await storage.presign('exports/t/linked.zip', 2);
      const response = await fetch(link);
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(response.headers.get('content-disposition'), 'attachment; filename="linked.zip"');
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(data));
      await sleep(3500);
      const expired = await fetch(link);
      await expired.arrayBuffer();
      assert.equal(expired.status, 403, 'refused once expired');
    });

    test('a missing container is ContainerMissing for every operation until ensureContainer creates it', async () => {
      const storage = await variants.missingContainer();
      await rejectsWith(storage.get('x'), 'ContainerMissing', storage, 'x');
      await rejectsWith(storage.get('x', { offset: 0, length: 1 }), 'ContainerMissing', storage, 'x');
      await rejectsWith(storage.put('x', Buffer.from('x')), 'ContainerMissing', storage, 'x');
      await rejectsWith(storage.put('f/x', Buffer.from('x')), 'ContainerMissing', storage, 'f/x');
      await rejectsWith(storage.stat('x'), 'ContainerMissing', storage, 'x');
      await rejectsWith(storage.delete('x'), 'ContainerMissing', storage, 'x');
      await rejectsWith(putStream(storage, 'f/x', chunked(Buffer.from('x'), 1)), 'ContainerMissing', storage, 'f/x');
      await rejectsWith(collect(storage.list('')), 'ContainerMissing', storage);
      await storage.ensureContainer();
      await storage.ensureContainer();
      await storage.put('f/x', Buffer.from('x'));
      assert.deepEqual(await names(storage, ''), ['f/x']);
    });

    const { wrongCredentials, unreachable } = variants;
    if (wrongCredentials)
      test('wrong credentials are AccessDenied', async () => {
        const storage = await wrongCredentials();
        await rejectsWith(storage.get('x'), 'AccessDenied', storage, 'x');
        await rejectsWith(storage.put('x', Buffer.from('x')), 'AccessDenied', storage, 'x');
        await rejectsWith(storage.stat('x'), 'AccessDenied', storage, 'x');
        await rejectsWith(collect(storage.list('')), 'AccessDenied', storage);
      });

    if (unreachable)
      test('an unreachable server is Transient', async () => {
        const storage = await unreachable();
        await rejectsWith(storage.get('x'), 'Transient', storage, 'x');
        await rejectsWith(storage.put('x', Buffer.from('x')), 'Transient', storage, 'x');
        await rejectsWith(collect(storage.list('')), 'Transient', storage);
      });

    test('retrying(faulty()): transient errors are retried, permanent ones are not', async () => {
      const base = await open();
      const storage = faulty(base);
      const retries: RetryEvent[] = [];
      const retried = retrying(storage, { baseDelayMs: 1, maxDelayMs: 2, onRetry: (event) => retries.push(event) });
      await base.put('packs/t', Buffer.from('t'));

      storage.inject('get', { times: 2, error: transient() });
      assert.equal((await retried.get('packs/t')).toString(), 't');
      assert.equal(storage.calls('get'), 3);
      assert.deepEqual(
        retries.map((r) => [r.operation, r.name, r.attempt, r.error.code]),
        [
          ['get', 'packs/t', 1, 'Transient'],
          ['get', 'packs/t', 2, 'Transient'],
        ],
      );

      storage.inject('put', { error: new TidemarkError('AccessDenied', 'injected: denied') });
      await assert.rejects(retried.put('packs/u', Buffer.from('u')), { code: 'AccessDenied' });
      assert.equal(storage.calls('put'), 1);
      assert.equal(await base.stat('packs/u'), undefined, 'a failed put writes nothing');

      await rejectsWith(retried.get('packs/missing'), 'NotFound', base, 'packs/missing');
      assert.equal(storage.calls('get'), 4);

      storage.inject('stat', { times: 5, error: transient() });
      assert.deepEqual(await retried.stat('packs/t'), { name: 'packs/t', size: 1 });
      assert.equal(storage.calls('stat'), 6);
      assert.equal(storage.pending(), 0);

      const impatient = retrying(storage, { budgetMs: 0 });
      storage.inject('stat', { error: transient() });
      await assert.rejects(impatient.stat('packs/t'), { code: 'Transient', message: 'injected: connection reset' });
    });

    test('retrying(faulty()): a listing that fails midway resumes without repeating blobs', async () => {
      const base = await open();
      const storage = faulty(base);
      for (const blob of ['l/1', 'l/2', 'l/3', 'l/4']) await base.put(blob, Buffer.from(blob));
      storage.inject('list', { error: transient() });
      storage.inject('listItem', { call: 3, error: transient() });
      const listed = await names(retrying(storage, { baseDelayMs: 1 }), 'l/');
      assert.deepEqual(listed, ['l/1', 'l/2', 'l/3', 'l/4']);
      assert.equal(storage.calls('list'), 3);
      assert.equal(storage.pending(), 0);
    });

    test('retrying(faulty()): a put whose answer was lost is tried again and leaves the whole blob', async () => {
      const base = await open();
      const storage = faulty(base);
      const data = randomBytes(4096);
      storage.inject('put', { answerLost: true, error: transient() });
      await retrying(storage, { baseDelayMs: 1 }).put('packs/lost', data);
      assert.equal(storage.calls('put'), 2);
      assert.deepEqual(await base.get('packs/lost'), data);
    });
  });
}

/** Every backend streams puts; wrappers made for one test may not. */
function putStream(storage: Storage, name: string, data: Readable): Promise<number> {
  assert.ok(storage.putStream, `${storage.description} has no putStream`);
  return storage.putStream(name, data);
}

/** `data` as a stream of `size`-byte chunks, whose length nobody is told. */
function chunked(data: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
    })(),
  );
}

function transient(): TidemarkError {
  return new TidemarkError('Transient', 'injected: connection reset');
}

/** Checks the error's code and that its message names the storage and, when given, the blob. */
async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, storage: Storage, blob?: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TidemarkError, `not a TidemarkError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(storage.description), `${error.message} does not name ${storage.description}`);
    if (blob) assert.ok(error.message.includes(blob), `${error.message} does not name ${blob}`);
    return true;
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const result: T[] = [];
  for await (const item of items) result.push(item);
  return result;
}

async function names(storage: Storage, prefix: string): Promise<string[]> {
  return (await collect(storage.list(prefix))).map((blob) => blob.name).sort();
}

function byName(a: BlobInfo, b: BlobInfo): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

async function inParallel<T>(items: T[], concurrency: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++] as T);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
