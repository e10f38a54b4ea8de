import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isCode } from '../../errors.ts';
import { decompress } from '../compression.ts';
import type { ChainId, ChunkId } from '../format.ts';
import { entriesOf } from '../index-file.ts';
import { openRecord } from '../pack.ts';
import { Repository } from '../repository.ts';
import { FileStorage } from '../storage/file.ts';
import { testRepository } from '../testing/repository.ts';
import { chunkIdOf } from './chunk-work.ts';
import { ChunkPipeline, type Slot } from './pool.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-pipeline-'));
const pipelines: ChunkPipeline[] = [];
after(async () => {
  await Promise.all(pipelines.map((p) => p.close()));
  await rm(root, { recursive: true, force: true });
});
const MiB = 1024 * 1024;
const chain = '0123456789abcdef0123456789abcdef' as ChainId;
let repositories = 0;

async function repositoryWith(options: ConstructorParameters<typeof ChunkPipeline>[0] & { packSize?: number }) {
  const { packSize = 3 * MiB, ...pipelineOptions } = options;
  const pipeline = new ChunkPipeline(pipelineOptions);
  pipelines.push(pipeline);
  const repository = await testRepository(join(root, `repo-${repositories++}`), 'pipeline test');
  return { repository, store: repository.chunkStore({ pipeline, packSize }) };
}

/** Text that compresses, different for each seed. */
const text = (seed: number, length: number) =>
  Buffer.from(`row ${seed}: ${'tidemark '.repeat(10)}\n`.repeat(Math.ceil(length / 100))).subarray(0, length);

describe('chunk pipeline', () => {
  it('stores large and small chunks on workers and inline, readable after flush, packs rotating', async () => {
    const { repository, store } = await repositoryWith({ workers: 2, slots: 3 });
    // Two incompressible chunks over packSize: whichever is sealed first closes a pack, in any completion order.
    const chunks = [text(1, 2 * MiB), randomBytes(4 * MiB), text(2, 10), text(3, 100 * 1024), randomBytes(5 * MiB)];
    const results = await Promise.all(chunks.map((c) => store.put(chain, 'data', c)));
    assert.deepEqual(
      results.map((r) => r.stored),
      [true, true, true, true, true],
    );
    assert.deepEqual(
      results.map((r) => r.id),
      chunks.map((c) => store.chunkId(chain, c)),
      'ids from the workers are the ids of the calling thread',
    );
    const index = await store.flush();
    assert.ok(index.packs.length >= 2, 'packs rotate at packSize');
    await repository.saveIndex(index);
    const reader = await Repository.open(
      new FileStorage(join(root, `repo-${repositories - 1}`)),
      Buffer.from('pipeline test'),
    );
    for (const [i, r] of results.entries())
      assert.ok((await reader.chunkStore().get(r.id)).equals(chunks[i] as Buffer));
  });

  it('stores content put concurrently many times once', async () => {
    const { store } = await repositoryWith({ workers: 2 });
    const data = text(7, 3 * MiB);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(chain, 'data', Buffer.from(data))));
    assert.equal(results.filter((r) => r.stored).length, 1);
    assert.equal(new Set(results.map((r) => r.id)).size, 1);
    const index = await store.flush();
    assert.equal(index.packs.flatMap((p) => entriesOf(p.rows)).length, 1);
  });

  it('seals small chunks in batches on the workers: every size below the limit, batch and pack boundaries, duplicates once', async () => {
    const { repository, store } = await repositoryWith({ workers: 2, packSize: 256 * 1024 });
    // 3,000 chunks of 1 B to 64 KiB − 1 (over a batch's 1,024 chunks and its MiB), some twice, some as parts.
    // Half text (compresses), half random (stored as is).
    const made = (i: number): Buffer => {
      const length = 1 + ((i * 7919) % (64 * 1024 - 1));
      return i % 2 ? text(i, length) : randomBytes(length);
    };
    const chunks = Array.from({ length: 3000 }, (_, i) => made(i));
    for (let i = 3; i < chunks.length; i += 7) chunks[i] = chunks[i - 1] as Buffer;
    chunks.push(randomBytes(64 * 1024 - 1), randomBytes(1));
    const results = await Promise.all(
      chunks.map((c, i) => store.put(chain, i % 2 ? 'tree' : 'data', i % 5 ? c : [c.subarray(0, 1), c.subarray(1)])),
    );
    assert.deepEqual(
      results.map((r) => r.id),
      chunks.map((c) => store.chunkId(chain, c)),
    );
    const distinct = new Set(results.map((r) => r.id));
    assert.equal(results.filter((r) => r.stored).length, distinct.size, 'a chunk put twice is stored once');
    const index = await store.flush();
    const entries = index.packs.flatMap((p) => entriesOf(p.rows));
    assert.equal(entries.length, distinct.size);
    assert.ok(index.packs.length > 10, `packs rotate within batches (${index.packs.length})`);
    for (const pack of index.packs)
      assert.ok(
        pack.size < 256 * 1024 + 64 * 1024 + 1024,
        `a pack ends at the first record past its size: ${pack.size}`,
      );
    await repository.saveIndex(index);
    const reader = await Repository.open(repository.storage, Buffer.from('pipeline test'));
    for (const [i, r] of results.entries())
      assert.ok((await reader.chunkStore().get(r.id)).equals(chunks[i] as Buffer), `chunk ${i}`);
  });

  it('takes a chunk as the parts it is made of: same id, stored once, on a worker and inline', async () => {
    const { store } = await repositoryWith({ workers: 1 });
    for (const data of [text(11, 3 * MiB), text(12, 1000)]) {
      const parts = [data.subarray(0, 10), data.subarray(10, 700), data.subarray(700)];
      const fromParts = await store.put(chain, 'data', parts);
      assert.deepEqual(fromParts, { id: store.chunkId(chain, data), stored: true });
      assert.deepEqual(await store.put(chain, 'data', data), { id: fromParts.id, stored: false });
    }
  });

  it('keeps a worker on the chunk it identified until told to seal or skip it, then takes the next job', async () => {
    const pipeline = new ChunkPipeline({ workers: 1, slots: 3 });
    pipelines.push(pipeline);
    // Buffers of their own, as ChunkStore posts them (not views of Node's buffer pool).
    const key = Uint8Array.from(randomBytes(32));
    const chainBytes = Uint8Array.from(Buffer.from(chain, 'hex'));
    const chunks = [text(21, MiB), text(22, MiB), text(23, MiB)];
    const slots = await Promise.all(chunks.map((c) => pipeline.acquire(c.length)));
    for (const [i, slot] of slots.entries()) new Uint8Array(slot.input).set(chunks[i] as Buffer);
    const ids = slots.map((slot, i) => pipeline.identify(slot, (chunks[i] as Buffer).length, key, chainBytes, key));
    const [first, second, third] = slots as [Slot, Slot, Slot];
    const settled: number[] = [];
    for (const [i, id] of ids.entries()) id.then(() => settled.push(i));
    assert.equal(await ids[0], chunkIdOf(key, chainBytes, chunks[0] as Buffer));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(settled, [0], 'the only worker waits for the verdict on the first chunk');
    pipeline.skip(first);
    assert.equal(await ids[1], chunkIdOf(key, chainBytes, chunks[1] as Buffer));
    const sealed = await pipeline.sealIdentified(second);
    const record = Buffer.from(second.output, 0, sealed.length);
    const opened = openRecord(Buffer.from(key), await (ids[1] as Promise<ChunkId>), record, 'test');
    assert.ok((await decompress(sealed.codec, opened)).equals(chunks[1] as Buffer));
    await ids[2];
    pipeline.skip(third);
    await assert.rejects(pipeline.sealIdentified(third), /held no chunk/);
  });

  it('a worker that reaches its wait after the verdict, and after its slot went to the next chunk, neither hangs nor seals that chunk', async () => {
    const { repository, store } = await repositoryWith({
      workers: 1,
      slots: 1,
      workerUrl: new URL('./testing/late-waiting-worker.ts', import.meta.url),
    });
    const known = text(31, MiB);
    await store.put(chain, 'data', known);
    // A known chunk is skipped before its worker waits; the slot is free at once and the next chunk takes it.
    const chunks = [known, text(32, MiB), known, text(33, MiB), randomBytes(MiB)];
    const results = [];
    for (const chunk of chunks) results.push(await store.put(chain, 'data', chunk));
    assert.deepEqual(
      results.map((r) => r.stored),
      [false, true, false, true, true],
    );
    await repository.saveIndex(await store.flush());
    const reader = await Repository.open(repository.storage, Buffer.from('pipeline test'));
    for (const [i, r] of results.entries())
      assert.ok((await reader.chunkStore().get(r.id)).equals(chunks[i] as Buffer), `chunk ${i}`);
  });

  it('makes acquire wait while every slot is in use (bounded memory)', async () => {
    const pipeline = new ChunkPipeline({ workers: 1, slots: 1 });
    const slot = await pipeline.acquire(10);
    let second = false;
    const next = pipeline.acquire(10).then((s) => {
      second = true;
      return s;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(second, false);
    pipeline.release(slot);
    assert.equal(await next, slot);
  });

  it('fails the job of a worker that exits or throws, naming why, and carries on with a new worker', async () => {
    const pipeline = new ChunkPipeline({
      workers: 1,
      workerUrl: new URL('./testing/dying-worker.ts', import.meta.url),
    });
    pipelines.push(pipeline);
    const slot = await pipeline.acquire(MiB);
    await assert.rejects(pipeline.identify(slot, 1, Buffer.alloc(32), Buffer.alloc(16), Buffer.alloc(32)), (error) => {
      assert.ok(isCode(error, 'Internal'));
      assert.match((error as Error).message, /chunk pipeline worker stopped: exited with code 3/);
      return true;
    });
    await assert.rejects(
      pipeline.identify(slot, 2, Buffer.alloc(32), Buffer.alloc(16), Buffer.alloc(32)),
      /worker stopped: worker bug/,
    );
  });

  it('fails a put whose worker dies, with the chunk in the message (a backup fails, never hangs)', async () => {
    const { store } = await repositoryWith({
      workers: 2,
      workerUrl: new URL('./testing/dying-worker.ts', import.meta.url),
    });
    await assert.rejects(
      store.put(chain, 'data', randomBytes(MiB)),
      /storing a chunk of 1048576 bytes: chunk pipeline worker stopped/,
    );
    await assert.rejects(store.put(chain, 'data', randomBytes(MiB + 1)), /worker stopped/);
    // A small chunk is taken at once and sealed in a batch later: the failure comes with the flush.
    assert.equal((await store.put(chain, 'data', randomBytes(1000))).stored, true);
    await assert.rejects(store.flush(), /sealing 1 small chunks: chunk pipeline worker stopped/);
  });

  it('fails a job the worker cannot do with its error', async () => {
    const pipeline = new ChunkPipeline({ workers: 1 });
    pipelines.push(pipeline);
    const slot = await pipeline.acquire(MiB);
    await assert.rejects(pipeline.seal(slot, MiB, Buffer.alloc(5), '00'.repeat(32) as never), /key length/i);
  });
});
