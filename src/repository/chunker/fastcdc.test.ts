import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isCode } from '../../errors.ts';
import {
  Chunker,
  type ChunkerOptions,
  chunkPartsStream,
  chunkStream,
  DEFAULT_AVG,
  DEFAULT_MAX,
  DEFAULT_MIN,
} from './fastcdc.ts';
import { gearTable } from './gear.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const seed = Buffer.alloc(32, 0x5a);
const small = { min: 2 * KiB, avg: 8 * KiB, max: 32 * KiB };
/** Leftovers shorter than this are staged (copied) by the chunker. */
const SMALL_LEFTOVER = 16 * KiB;

/** Deterministic pseudo-random bytes: AES-128-CTR keystream of a label. */
function randomData(length: number, label = 'data'): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function* split(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < data.length; o += size) yield data.subarray(o, o + size);
}

async function collect(source: AsyncIterable<Buffer>, options: ChunkerOptions): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of chunkStream(source, options)) chunks.push(Buffer.from(chunk));
  return chunks;
}

function chunkWhole(data: Buffer, options: ChunkerOptions): Buffer[] {
  const chunker = new Chunker(options);
  const chunks = chunker.push(data);
  const last = chunker.finish();
  return last ? [...chunks, last] : chunks;
}

const lengths = (chunks: Buffer[]) => chunks.map((c) => c.length);
const digest = (chunk: Buffer) => createHash('sha256').update(chunk).digest('hex');

/** The one-byte-at-a-time definition from the header of fastcdc.ts, written plainly with float arithmetic. */
function referenceLengths(data: Buffer, options: ChunkerOptions & { min: number; avg: number; max: number }) {
  const gear = gearTable(options.seed);
  const bits = Math.log2(options.avg);
  // (h & mask) == 0 for a mask of k one-bits ending at bit 30.
  const hits = (h: number, k: number) => Math.floor(h / 2 ** (31 - k)) % 2 ** k === 0;
  const result: number[] = [];
  for (let start = 0; start < data.length; ) {
    let size = Math.min(data.length - start, options.max);
    let h = 0;
    for (let n = options.min; n < size; n++) {
      h = (h * 2 + (gear[data[start + n] as number] as number)) % 2 ** 32;
      if (hits(h, n < options.avg ? bits + 2 : bits - 2)) {
        size = n + 1;
        break;
      }
    }
    result.push(size);
    start += size;
  }
  return result;
}

describe('gearTable', () => {
  it('is 256 values derived from the seed, the same every time', () => {
    const table = gearTable(seed);
    assert.equal(table.length, 256);
    assert.deepEqual(gearTable(Buffer.from(seed)), table);
    assert.notDeepEqual(gearTable(Buffer.alloc(32, 0x5b)), table);
    assert.ok(new Set(table).size > 250);
  });

  it('keeps its derivation (part of the repository format)', () => {
    const table = gearTable(Buffer.alloc(32));
    assert.deepEqual(Array.from(table.subarray(0, 4)), GOLDEN_GEAR);
  });

  it('rejects a seed that is not 32 bytes', () => {
    assert.throws(
      () => gearTable(Buffer.alloc(16)),
      (e) => isCode(e, 'InvalidArgument') && /seed/.test((e as Error).message),
    );
  });
});

describe('Chunker', () => {
  it('has the documented defaults', () => {
    const chunker = new Chunker({ seed });
    assert.deepEqual([chunker.min, chunker.avg, chunker.max], [256 * KiB, MiB, 4 * MiB]);
    assert.deepEqual([DEFAULT_MIN, DEFAULT_AVG, DEFAULT_MAX], [256 * KiB, MiB, 4 * MiB]);
  });

  it('reproduces the input exactly, chunks within bounds, average near avg', () => {
    const data = randomData(32 * MiB);
    const chunks = chunkWhole(data, { seed });
    assert.ok(Buffer.concat(chunks).equals(data));
    for (const chunk of chunks.slice(0, -1)) {
      assert.ok(chunk.length >= DEFAULT_MIN, `chunk of ${chunk.length} bytes is below min`);
      assert.ok(chunk.length <= DEFAULT_MAX, `chunk of ${chunk.length} bytes is above max`);
    }
    const average = data.length / chunks.length;
    assert.ok(average > DEFAULT_AVG / 2 && average < DEFAULT_AVG * 2, `average chunk ${average} bytes`);
  });

  it('keeps small chunk sizes within bounds and near avg too', () => {
    const data = randomData(4 * MiB, 'small');
    const chunks = chunkWhole(data, { seed, ...small });
    assert.ok(Buffer.concat(chunks).equals(data));
    for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length >= small.min && chunk.length <= small.max);
    const average = data.length / chunks.length;
    assert.ok(average > small.avg / 2 && average < small.avg * 2, `average chunk ${average} bytes`);
  });

  it('cuts at max when no boundary is found', () => {
    const params = { min: 2 * KiB, avg: 8 * KiB, max: 8 * KiB + 64 };
    const data = randomData(2 * MiB, 'max');
    const chunks = chunkWhole(data, { seed, ...params });
    assert.ok(Buffer.concat(chunks).equals(data));
    assert.ok(chunks.every((c) => c.length <= params.max));
    assert.ok(chunks.filter((c) => c.length === params.max).length > chunks.length / 4);
    // Constant input: the hash is constant after 32 bytes, so every chunk has one and the same length.
    const constant = chunkWhole(Buffer.alloc(10 * small.max + 5, 7), { seed, ...small });
    assert.equal(new Set(lengths(constant).slice(0, -1)).size, 1);
    assert.equal(Buffer.concat(constant).length, 10 * small.max + 5);
  });

  it('gives the boundaries of the one-byte definition (the two-byte loop is exact)', () => {
    for (const [label, params, length] of [
      ['ref-small', small, 2 * MiB],
      ['ref-default', { min: DEFAULT_MIN, avg: DEFAULT_AVG, max: DEFAULT_MAX }, 12 * MiB],
    ] as const) {
      const data = randomData(length, label);
      assert.deepEqual(lengths(chunkWhole(data, { seed, ...params })), referenceLengths(data, { seed, ...params }));
    }
  });

  it('gives each chunker the boundaries of its own seed when chunkers of two seeds take turns', () => {
    const other = Buffer.alloc(32, 0xa5);
    const data = randomData(3 * MiB, 'two-seeds');
    const chunkers = [new Chunker({ seed, ...small }), new Chunker({ seed: other, ...small })];
    const chunks: Buffer[][] = [[], []];
    for (let o = 0; o < data.length; o += 100 * KiB)
      for (const [i, chunker] of chunkers.entries()) chunks[i]?.push(...chunker.push(data.subarray(o, o + 100 * KiB)));
    for (const [i, chunker] of chunkers.entries()) {
      const last = chunker.finish();
      if (last) chunks[i]?.push(last);
    }
    assert.deepEqual(lengths(chunks[0] ?? []), referenceLengths(data, { seed, ...small }));
    assert.deepEqual(lengths(chunks[1] ?? []), referenceLengths(data, { seed: other, ...small }));
    assert.notDeepEqual(lengths(chunks[0] ?? []), lengths(chunks[1] ?? []));
  });

  it('handles empty input and input shorter than min', async () => {
    assert.deepEqual(await collect(split(Buffer.alloc(0), 1), { seed }), []);
    const chunker = new Chunker({ seed });
    assert.deepEqual(chunker.push(new Uint8Array(0)), []);
    assert.equal(chunker.finish(), undefined);
    const data = randomData(1000);
    const chunks = await collect(split(data, 100), { seed });
    assert.equal(chunks.length, 1);
    assert.ok(chunks[0]?.equals(data));
  });

  it('accepts Uint8Array input and a synchronous iterable', async () => {
    const data = randomData(100 * KiB);
    const pieces = [new Uint8Array(data.subarray(0, 50_000)), new Uint8Array(data.subarray(50_000))];
    const chunks = await collect(
      (async function* () {
        yield* pieces;
      })() as AsyncIterable<Buffer>,
      { seed, ...small },
    );
    assert.ok(Buffer.concat(chunks).equals(data));
    const fromArray: Buffer[] = [];
    for await (const chunk of chunkStream(pieces, { seed, ...small })) fromArray.push(chunk);
    assert.deepEqual(lengths(fromArray), lengths(chunks));
  });
});

describe('chunks as parts', () => {
  it('are the chunks of chunkStream, as the views and staged copies they span (input split 1, 5000, 70000 bytes)', async () => {
    const data = randomData(512 * KiB, 'parts');
    const expected = chunkWhole(data, { seed, ...small }).map(digest);
    for (const size of [1, 5000, 70_000]) {
      const joined: string[] = [];
      let views = 0;
      for await (const parts of chunkPartsStream(split(data, size), { seed, ...small })) {
        joined.push(digest(Buffer.concat(parts)));
        views += parts.filter((p) => p.buffer === data.buffer).length;
      }
      assert.deepEqual(joined, expected, `split ${size}`);
      if (size > SMALL_LEFTOVER) assert.ok(views > 0, 'large pieces are views of the input, not copies');
    }
  });
});

describe('boundaries depend only on content and seed', () => {
  it('are the same however the input is split (small params: 1, 7, 4096 bytes, whole)', async () => {
    const data = randomData(768 * KiB, 'split-small');
    const expected = lengths(chunkWhole(data, { seed, ...small }));
    assert.ok(expected.length > 40);
    for (const size of [1, 7, 4096, 65536, data.length]) {
      const chunks = await collect(split(data, size), { seed, ...small });
      assert.deepEqual(lengths(chunks), expected, `split into ${size}-byte buffers`);
      assert.ok(Buffer.concat(chunks).equals(data));
    }
  });

  it('are the same however the input is split (defaults: 7 bytes, 64 KiB, odd sizes, whole)', async () => {
    const data = randomData(6 * MiB, 'split-default');
    const expected = lengths(chunkWhole(data, { seed }));
    assert.ok(expected.length > 3);
    for (const size of [7, 65536, 65537, 1_000_003, data.length]) {
      const chunks = await collect(split(data, size), { seed });
      assert.deepEqual(lengths(chunks), expected, `split into ${size}-byte buffers`);
      assert.ok(Buffer.concat(chunks).equals(data));
    }
  });

  it('survive an insertion near the start (the dedup property)', () => {
    const data = randomData(32 * MiB, 'stable');
    const before = chunkWhole(data, { seed });
    const after = chunkWhole(Buffer.concat([data.subarray(0, 1000), randomData(100, 'ins'), data.subarray(1000)]), {
      seed,
    });
    const known = new Set(before.map(digest));
    const changed = after.filter((c) => !known.has(digest(c)));
    assert.ok(changed.length <= 2, `${changed.length} of ${after.length} chunks changed`);
    assert.deepEqual(
      after.slice(changed.length).map(digest),
      before.slice(before.length - (after.length - changed.length)).map(digest),
    );
  });

  it('differ between seeds', () => {
    const data = randomData(16 * MiB, 'seeds');
    const a = lengths(chunkWhole(data, { seed }));
    const b = lengths(chunkWhole(data, { seed: Buffer.alloc(32, 0x01) }));
    assert.notDeepEqual(a, b);
    const cutsA = new Set(a.map((_, i) => a.slice(0, i + 1).reduce((x, y) => x + y, 0)));
    const shared = b.slice(0, -1).filter((_, i) => cutsA.has(b.slice(0, i + 1).reduce((x, y) => x + y, 0)));
    assert.ok(shared.length <= 1, `${shared.length} boundaries shared`);
  });

  it("follow the seed's bytes when chunkers of many seeds were made before (tables kept per seed)", () => {
    const data = randomData(2 * MiB, 'tables');
    const seeds = Array.from({ length: 20 }, (_, i) => Buffer.alloc(32, i + 1));
    const each = seeds.map((s) => lengths(chunkWhole(data, { seed: s, ...small })));
    assert.equal(new Set(each.map((l) => l.join())).size, seeds.length, 'every seed cuts differently');
    assert.deepEqual(
      seeds.map((s) => lengths(chunkWhole(data, { seed: s, ...small }))),
      each,
      'again, past the number of seeds kept',
    );
    const reused = Buffer.from(seeds[0] as Buffer);
    assert.deepEqual(lengths(chunkWhole(data, { seed: reused, ...small })), each[0]);
    reused.fill(2); // the same Buffer, now holding the second seed
    assert.deepEqual(lengths(chunkWhole(data, { seed: reused, ...small })), each[1]);
  });

  it('keep their values for a fixed seed and input (part of the repository format)', () => {
    const data = randomData(8 * MiB, 'golden');
    assert.deepEqual(lengths(chunkWhole(data, { seed: Buffer.alloc(32) })), GOLDEN_LENGTHS);
  });
});

describe('parameters', () => {
  const cases: [string, Partial<ChunkerOptions>][] = [
    ['avg', { avg: 1000 * 1000 }],
    ['avg', { avg: 0 }],
    ['avg', { min: 16, avg: 128, max: 1024 }],
    ['min', { min: 2 * MiB }],
    ['min', { min: MiB }],
    ['min', { min: 10 }],
    ['min', { min: 1.5 }],
    ['max', { max: MiB }],
    ['max', { max: 512 * KiB }],
    ['max', { max: -1 }],
    ['max', { max: 4 * 1024 * MiB }],
  ];
  for (const [parameter, options] of cases)
    it(`rejects ${JSON.stringify(options)} naming ${parameter}`, () => {
      assert.throws(
        () => new Chunker({ seed, ...options }),
        (e) => isCode(e, 'InvalidArgument') && new RegExp(`parameter ${parameter}\\b`).test((e as Error).message),
      );
    });

  it('rejects at the call of chunkStream, before reading the source', () => {
    let read = false;
    const source = (async function* () {
      read = true;
      yield Buffer.alloc(1);
    })();
    assert.throws(
      () => chunkStream(source, { seed, avg: 3 }),
      (e) => isCode(e, 'InvalidArgument'),
    );
    assert.equal(read, false);
  });
});

const GOLDEN_GEAR = [2952893319, 2195647751, 2491812823, 2340098177];
const GOLDEN_LENGTHS = [1273043, 699350, 531470, 1155345, 992360, 864292, 1431828, 1292392, 148528];
