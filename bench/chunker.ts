// Benchmarks the chunker and the compression codecs on this machine (not run in CI):
//   npx tsx bench/chunker.ts [--chunk-mib 256] [--compress-mib 64]
// Chunker: MB/s (10^6 bytes/s) over random data fed in 64 KiB buffers and as one buffer.
// Compression: MB/s and ratio (stored/raw) per codec on SQL-like text, CSV rows and random bytes, in
// 1 MiB chunks, as many in flight as there are cores (zlib runs on libuv's thread pool).
import { createCipheriv, createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { Chunker } from '../src/repository/chunker/fastcdc.ts';
import { compress, decompress } from '../src/repository/compression.ts';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { 'chunk-mib': { type: 'string', default: '256' }, 'compress-mib': { type: 'string', default: '64' } },
});
const chunkMiB = Number(values['chunk-mib']);
const compressMiB = Number(values['compress-mib']);

function randomData(length: number, label: string): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function text(length: number, line: (i: number, n: number) => string): Buffer {
  const noise = randomData(1 << 20, 'noise');
  const parts: string[] = [];
  let total = 0;
  for (let i = 0; total < length; i++) {
    const s = line(i, noise.readUInt32LE((i * 4) % (noise.length - 4)));
    parts.push(s);
    total += s.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

const statuses = ['shipped', 'pending', 'cancelled', 'returned'];
const sql = (i: number, n: number) =>
  `INSERT INTO public.orders (id, customer_id, amount, status, created_at, note) VALUES (${i}, ${n % 50000}, ${(n % 1000000) / 100}, '${statuses[n % 4]}', '2024-${String(1 + (n % 12)).padStart(2, '0')}-${String(1 + (n % 28)).padStart(2, '0')} ${String(n % 24).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}:00+00', 'order ${n.toString(36)}');\n`;
const csv = (i: number, n: number) =>
  `${100000 + i},${n},user${n % 9973}@example.com,${(n % 100000) / 100},2024-${1 + (n % 12)}-${1 + (n % 28)}T${n % 24}:${n % 60}:00Z,${statuses[(n >>> 3) % 4]}\n`;

const mbps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

function benchChunker(): void {
  const data = randomData(chunkMiB * MiB, 'chunker');
  const seed = Buffer.alloc(32, 1);
  console.log(`chunker: FastCDC min 256 KiB / avg 1 MiB / max 4 MiB on ${chunkMiB} MiB of random data`);
  for (const [name, size] of [
    ['64 KiB buffers', 64 * 1024],
    ['one buffer', data.length],
  ] as const) {
    let best = Number.POSITIVE_INFINITY;
    let count = 0;
    for (let round = 0; round < 3; round++) {
      const chunker = new Chunker({ seed });
      const start = performance.now();
      count = 0;
      for (let o = 0; o < data.length; o += size) count += chunker.push(data.subarray(o, o + size)).length;
      if (chunker.finish()) count++;
      best = Math.min(best, performance.now() - start);
    }
    console.log(
      `  ${name.padEnd(15)} ${mbps(data.length, best).padStart(5)} MB/s  ${count} chunks, average ${(data.length / count / 1024).toFixed(0)} KiB`,
    );
  }
}

type Codec = {
  name: string;
  compress: (b: Buffer) => Promise<Buffer>;
  decompress: (b: Buffer, n: number) => Promise<Buffer>;
};

const promisified =
  (f: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void, options: object) => (b: Buffer) =>
    new Promise<Buffer>((resolve, reject) => f(b, options, (e, r) => (e ? reject(e) : resolve(r))));

async function codecs(): Promise<Codec[]> {
  const list: Codec[] = [];
  const brotli = (q: number): Codec => ({
    name: `brotli q${q}`,
    compress: promisified(zlib.brotliCompress, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: q } }),
    decompress: (b, n) => promisified(zlib.brotliDecompress, { chunkSize: Math.max(64, n) })(b),
  });
  list.push(brotli(1), brotli(2), brotli(4));
  list.push({
    name: 'deflate-raw 1',
    compress: promisified(zlib.deflateRaw, { level: 1 }),
    decompress: (b, n) => promisified(zlib.inflateRaw, { chunkSize: Math.max(64, n) })(b),
  });
  for (const level of [1, 3])
    list.push({
      name: `zstd ${level} (node:zlib)`,
      compress: promisified(zlib.zstdCompress, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } }),
      decompress: (b, n) => promisified(zlib.zstdDecompress, { chunkSize: Math.max(64, n) })(b),
    });
  // Optional, not dependencies: measured when installed by hand (npm install --no-save ...).
  try {
    const name = '@bokuweb/zstd-wasm';
    const wasm = (await import(name)) as {
      init(): Promise<void>;
      compress(b: Uint8Array, level: number): Uint8Array;
      decompress(b: Uint8Array): Uint8Array;
    };
    await wasm.init();
    list.push({
      name: 'zstd 1 (wasm, sync)',
      compress: async (b) => Buffer.from(wasm.compress(b, 1)),
      decompress: async (b) => Buffer.from(wasm.decompress(b)),
    });
  } catch {
    // not installed
  }
  list.push({
    name: 'tidemark compress()',
    compress: async (b) => {
      const r = await compress(b);
      return Buffer.concat([Buffer.of(r.codec), r.data]);
    },
    decompress: (b, n) => decompress(b[0] as number, b.subarray(1), n),
  });
  return list;
}

async function inFlight<T, R>(items: T[], parallel: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await f(items[i] as T);
      }
    }),
  );
  return results;
}

async function benchCompression(): Promise<void> {
  const size = compressMiB * MiB;
  const datasets: [string, Buffer][] = [
    ['sql', text(size, sql)],
    ['csv', text(size, csv)],
    ['random', randomData(size, 'compress')],
  ];
  const parallel = availableParallelism();
  console.log(
    `\ncompression: ${compressMiB} MiB per data set in 1 MiB chunks, ${parallel} in flight; Node ${process.versions.node}`,
  );
  console.log(
    `  ${'codec'.padEnd(22)}${'data'.padEnd(8)}${'comp MB/s'.padStart(10)}${'dec MB/s'.padStart(10)}${'ratio'.padStart(8)}`,
  );
  for (const codec of await codecs())
    for (const [name, data] of datasets) {
      const chunks: Buffer[] = [];
      for (let o = 0; o < data.length; o += MiB) chunks.push(data.subarray(o, o + MiB));
      let start = performance.now();
      const stored = await inFlight(chunks, parallel, codec.compress);
      const compressMs = performance.now() - start;
      start = performance.now();
      const back = await inFlight(
        stored.map((s, i) => [s, chunks[i] as Buffer] as const),
        parallel,
        ([s, raw]) => codec.decompress(s, raw.length),
      );
      const decompressMs = performance.now() - start;
      if (!back.every((b, i) => b.equals(chunks[i] as Buffer))) throw new Error(`${codec.name} did not round-trip`);
      const ratio = stored.reduce((sum, s) => sum + s.length, 0) / data.length;
      console.log(
        `  ${codec.name.padEnd(22)}${name.padEnd(8)}${mbps(data.length, compressMs).padStart(10)}${(stored.every((s) => s[0] === 0 && codec.name.startsWith('tidemark')) ? 'stored' : mbps(data.length, decompressMs)).padStart(10)}${ratio.toFixed(3).padStart(8)}`,
      );
    }
}

benchChunker();
await benchCompression();
