// Chunk-id hash, measured against the rest of the pipeline on one core (not run in CI):
//   npm run bench:hash [-- --mib 256] [--blake3-from <npm prefix>]...
// Runs itself twice: as is, and with OPENSSL_ia32cap=:~0x20000000, which masks SHA-NI (CPUID leaf 7
// EBX bit 29) from OpenSSL, as on a CPU without it. Each run measures, in CPU time (user+sys) of
// this thread, MB/s (10^6 bytes/s) of: HMAC-SHA256 as chunk ids are computed (node:crypto), keyed
// BLAKE3 (WASM) from `hash-wasm` or `blake3-jit` installed in an npm prefix given with --blake3-from
// (`npm install --prefix /tmp/b3 blake3-jit`; they are not dependencies), FastCDC
// (src/repository/chunker), zstd level 1 (node:zlib) on SQL-like text and AES-256-GCM over the
// compressed bytes. Per-core pipeline throughput = bytes / (sum of each stage's time for them).
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { Chunker } from '../src/repository/chunker/fastcdc.ts';

const MiB = 1024 * 1024;
const SHA_NI_MASK = ':~0x20000000';
const CHUNK_SIZES = [64 * 1024, 256 * 1024, MiB];
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    'blake3-from': { type: 'string', multiple: true, default: [] },
    child: { type: 'boolean', default: false },
  },
});
const totalBytes = Number(values.mib) * MiB;

interface Measured {
  sha: string;
  rates: Record<string, number>;
  zstdRatio: number;
}

/** MB/s in CPU time of this process (the work is synchronous, on this thread), best of three rounds. */
function rate(bytes: number, work: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const before = process.cpuUsage();
    work();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return bytes / 1e6 / best;
}

function randomData(length: number, label: string): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** SQL-dump-like rows: what database backups feed the pipeline. */
function sqlText(length: number): Buffer {
  const noise = randomData(MiB, 'noise');
  const parts: string[] = [];
  let total = 0;
  for (let i = 0; total < length; i++) {
    const n = noise.readUInt32LE((i * 4) % (noise.length - 4));
    const row = `INSERT INTO public.orders VALUES (${i}, ${n % 50000}, ${(n % 1000000) / 100}, 'status ${n % 4}', '2024-${1 + (n % 12)}-${1 + (n % 28)}', 'order ${n.toString(36)}');\n`;
    parts.push(row);
    total += row.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

function slices(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o + size <= data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

async function measure(): Promise<Measured> {
  const data = randomData(totalBytes, 'hash');
  const key = randomBytes(32);
  const chain = randomBytes(16);
  const rates: Record<string, number> = {};
  for (const size of CHUNK_SIZES) {
    const chunks = slices(data, size);
    rates[`HMAC-SHA256 ${size / 1024} KiB`] = rate(chunks.length * size, () => {
      for (const c of chunks) createHmac('sha256', key).update(chain).update(c).digest();
    });
  }
  for (const prefix of values['blake3-from']) {
    const { name, id } = await blake3From(resolve(prefix), key);
    for (const size of CHUNK_SIZES) {
      const chunks = slices(data, size);
      rates[`BLAKE3 keyed (${name}) ${size / 1024} KiB`] = rate(chunks.length * size, () => {
        for (const c of chunks) id(chain, c);
      });
    }
  }
  const seed = Buffer.alloc(32, 1);
  rates.FastCDC = rate(data.length, () => {
    const chunker = new Chunker({ seed });
    for (let o = 0; o < data.length; o += 64 * 1024) chunker.push(data.subarray(o, o + 64 * 1024));
    chunker.finish();
  });
  const text = sqlText(Math.min(totalBytes, 64 * MiB));
  const textChunks = slices(text, MiB);
  const level = { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } };
  let compressed: Buffer[] = [];
  rates['zstd 1 (SQL text)'] = rate(textChunks.length * MiB, () => {
    compressed = textChunks.map((c) => zlib.zstdCompressSync(c, level));
  });
  const zstdRatio = compressed.reduce((sum, c) => sum + c.length, 0) / (textChunks.length * MiB);
  const aesKey = randomBytes(32);
  rates['AES-256-GCM'] = rate(data.length, () => {
    for (const c of slices(data, MiB)) {
      const cipher = createCipheriv('aes-256-gcm', aesKey, randomBytes(12));
      cipher.update(c);
      cipher.final();
      cipher.getAuthTag();
    }
  });
  return { sha: process.env.OPENSSL_ia32cap ? 'masked' : 'as the CPU has it', rates, zstdRatio };
}

type ChunkId = (chain: Buffer, data: Buffer) => Uint8Array;
interface Blake3Hasher {
  update(d: Uint8Array): Blake3Hasher;
  finalize(): Uint8Array;
}

/** A keyed BLAKE3 chunk-id function from the package installed in an npm prefix. */
async function blake3From(prefix: string, key: Buffer): Promise<{ name: string; id: ChunkId }> {
  const load = (path: string) => import(pathToFileURL(join(prefix, 'node_modules', path)).href);
  if (existsSync(join(prefix, 'node_modules/blake3-jit'))) {
    const { createKeyed, warmupSimd } = (await load('blake3-jit/dist/index.js')) as {
      createKeyed(key: Uint8Array): Blake3Hasher;
      warmupSimd(): boolean;
    };
    const simd = warmupSimd();
    return {
      name: `blake3-jit${simd ? ', WASM SIMD' : ''}`,
      id: (chain, data) => createKeyed(key).update(chain).update(data).finalize(),
    };
  }
  if (existsSync(join(prefix, 'node_modules/hash-wasm'))) {
    const { createBLAKE3 } = (await load('hash-wasm/dist/index.umd.js')) as {
      createBLAKE3(
        bits: number,
        key: Uint8Array,
      ): Promise<{
        init(): unknown;
        update(d: Uint8Array): unknown;
        digest(f: 'binary'): Uint8Array;
      }>;
    };
    const hasher = await createBLAKE3(256, key);
    return {
      name: 'hash-wasm',
      id: (chain, data) => {
        hasher.init();
        hasher.update(chain);
        hasher.update(data);
        return hasher.digest('binary');
      },
    };
  }
  throw new Error(`bench:hash: ${prefix} has neither node_modules/blake3-jit nor node_modules/hash-wasm`);
}

/** Seconds per MB through chunker, hash, zstd and AES (over the compressed bytes), on one core. */
function pipeline(m: Measured, hash: string): number {
  const r = m.rates;
  const perMB = 1 / (r.FastCDC ?? 0) + 1 / (r[hash] ?? 0) + 1 / (r['zstd 1 (SQL text)'] ?? 0);
  return 1 / (perMB + m.zstdRatio / (r['AES-256-GCM'] ?? 0));
}

function child(mask: boolean): Measured {
  const env = { ...process.env };
  if (mask) env.OPENSSL_ia32cap = SHA_NI_MASK;
  else delete env.OPENSSL_ia32cap;
  const args = [...process.execArgv, process.argv[1] as string, '--child', '--mib', String(values.mib)];
  for (const prefix of values['blake3-from']) args.push('--blake3-from', prefix);
  const run = spawnSync(process.execPath, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (run.status !== 0) throw new Error(`bench:hash child (SHA-NI ${mask ? 'masked' : 'as is'}) exited ${run.status}`);
  return JSON.parse(run.stdout) as Measured;
}

if (values.child) {
  process.stdout.write(JSON.stringify(await measure()));
} else {
  const shaNi = /\bsha_ni\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  const [plain, masked] = [child(false), child(true)];
  console.log(
    `Node ${process.versions.node}, OpenSSL ${process.versions.openssl}; CPU ${shaNi ? 'has' : 'lacks'} SHA-NI; ${values.mib} MiB per measurement, CPU time, best of 3, one thread`,
  );
  console.log('\n| stage | MB/s, SHA-NI as is | MB/s, SHA-NI masked |\n|---|---:|---:|');
  for (const name of Object.keys(plain.rates))
    console.log(`| ${name} | ${plain.rates[name]?.toFixed(0)} | ${masked.rates[name]?.toFixed(0)} |`);
  console.log(`\nzstd 1 stored/raw on the SQL text: ${plain.zstdRatio.toFixed(3)}`);
  console.log(
    '\n| pipeline per core (FastCDC + id + zstd 1 + AES-GCM) | SHA-NI as is | SHA-NI masked |\n|---|---:|---:|',
  );
  const hashes = Object.keys(plain.rates).filter((n) => n.endsWith(' 1024 KiB'));
  for (const hash of hashes)
    console.log(`| ${hash} | ${pipeline(plain, hash).toFixed(0)} MB/s | ${pipeline(masked, hash).toFixed(0)} MB/s |`);
}
