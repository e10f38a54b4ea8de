// The benchmark data set: deterministic (same seed, same bytes), generated into a temporary directory.
//
//   data/db/pgbench.sql                      a real pg_dump (plain SQL, COPY blocks) of a pgbench-schema
//                                            database filled by SQL from a seed (see generateDump)
//   data/tenants/tenant-NN/exports/*.csv     order exports (CSV rows)
//   data/tenants/tenant-NN/logs/*.log        application logs (key=value lines, some stack traces)
//   data/tenants/tenant-NN/documents/...     incompressible uploads (AES-128-CTR keystream of a seeded key)
//
// File sizes are drawn from a mix of small (1-64 KiB), medium (64 KiB-4 MiB) and large (4-64 MiB)
// log-uniform ranges, so there are thousands of files of very different sizes. `mutateDataset` then
// changes about 1% of the bytes: rewrites some CSV files, appends to logs, overwrites a few regions of
// the dump and of large documents, adds a few files and deletes a few.
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { startPostgres } from '../test/harness/postgres.ts';
import { runCommand } from '../test/harness/process.ts';
import { systemTool } from '../test/harness/tools.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export type FileKind = 'csv' | 'log' | 'random' | 'dump';

export interface DatasetFile {
  /** Relative to the data set root. */
  path: string;
  kind: FileKind;
  size: number;
}

export interface Dataset {
  root: string;
  files: DatasetFile[];
  seed: string;
  bytesByKind: Record<FileKind, number>;
  totalBytes: number;
  dump: { scale: number; historyRows: number; postgres: string };
}

export interface Mutation {
  rewrittenFiles: number;
  rewrittenBytes: number;
  appendedFiles: number;
  appendedBytes: number;
  regions: number;
  regionBytes: number;
  newFiles: number;
  newBytes: number;
  deletedFiles: number;
  deletedBytes: number;
  /** Bytes written that differ from before (rewritten + appended + regions + new files). */
  changedBytes: number;
}

/** A small fast PRNG (sfc32) seeded from a label through SHA-256: the same label gives the same sequence. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(label: string) {
    const h = createHash('sha256').update(label).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.u32() / 2 ** 32;
  }

  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  logUniform(min: number, max: number): number {
    return Math.round(min * (max / min) ** this.float());
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }
}

/** Incompressible bytes: the AES-128-CTR keystream under a key derived from `label`. */
function keystream(label: string) {
  const key = createHash('sha256').update(`keystream:${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  return (length: number): Buffer =>
    length <= zeros.length ? cipher.update(zeros.subarray(0, length)) : cipher.update(Buffer.alloc(length));
}

const FIRST = ['anna', 'ben', 'carla', 'dmitri', 'elif', 'farid', 'greta', 'hugo', 'ines', 'jonas', 'kemal', 'lena'];
const LAST = ['meyer', 'novak', 'okafor', 'petrov', 'quinn', 'rossi', 'silva', 'tanaka', 'ulrich', 'varga', 'wong'];
const DOMAINS = ['example.com', 'mail.example.org', 'corp.example.net', 'shop.example'];
const STATUS = ['paid', 'paid', 'paid', 'shipped', 'shipped', 'pending', 'refunded', 'cancelled'];
const CURRENCY = ['EUR', 'EUR', 'USD', 'GBP', 'CHF'];
const COUNTRY = ['DE', 'FR', 'NL', 'AT', 'CH', 'US', 'GB', 'PL', 'SE', 'IT'];
const NOTES = ['', '', '', 'gift wrap', 'leave at door', 'express', 'call before delivery', 'b2b invoice'];
const SERVICES = ['api-gateway', 'orders', 'billing', 'search', 'auth', 'notifier'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const PATHS = ['/v1/orders', '/v1/customers', '/v1/invoices', '/v1/search', '/v1/session', '/healthz'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];

function hex(rng: Rng, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += rng.u32().toString(16).padStart(8, '0');
  return s;
}

function csvLines(rng: Rng, tenant: string): () => string {
  let id = 100_000 + rng.int(900_000);
  let time = Date.UTC(2024, 0, 1) + rng.int(300 * 86_400_000);
  let header = true;
  return () => {
    if (header) {
      header = false;
      return 'order_id,tenant,customer_id,customer_email,created_at,status,sku,quantity,unit_price_cents,currency,country,note\n';
    }
    id += 1 + rng.int(3);
    time += rng.int(90_000);
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const customer = rng.int(50_000);
    return `${id},${tenant},${customer},${first}.${last}${customer % 100}@${rng.pick(DOMAINS)},${new Date(time).toISOString()},${rng.pick(STATUS)},SKU-${String(rng.int(100_000)).padStart(5, '0')},${1 + rng.int(9)},${99 + rng.int(250_000)},${rng.pick(CURRENCY)},${rng.pick(COUNTRY)},${rng.pick(NOTES)}\n`;
  };
}

function logLines(rng: Rng, tenant: string): () => string {
  let time = Date.UTC(2025, 0, 1) + rng.int(200 * 86_400_000);
  return () => {
    time += rng.int(400);
    const level = rng.pick(LEVELS);
    const path = rng.pick(PATHS);
    const status = level === 'ERROR' ? 500 : level === 'WARN' ? rng.pick([404, 409, 429]) : 200;
    let line = `${new Date(time).toISOString()} ${level.padEnd(5)} ${rng.pick(SERVICES)} req=${hex(rng, 2)} tenant=${tenant} method=${rng.pick(METHODS)} path=${path}/${rng.int(1_000_000)} status=${status} dur_ms=${rng.int(rng.int(8) === 0 ? 5000 : 80)} bytes=${rng.int(64 * KiB)}\n`;
    if (level === 'ERROR')
      line += `Error: upstream ${rng.pick(SERVICES)} failed: connect ECONNREFUSED\n    at Socket.connect (node:net:1495:16)\n    at ${rng.pick(SERVICES)}Client.request (/app/dist/clients/http.js:${rng.int(400)}:21)\n    at async handler (/app/dist/routes${path}.js:${rng.int(200)}:9)\n`;
    return line;
  };
}

/** Text of exactly `size` bytes made of `next()` lines (the last line is cut and ends in a newline). */
function* textChunks(next: () => string, size: number): Generator<Buffer> {
  let left = size;
  while (left > 0) {
    const parts: string[] = [];
    let length = 0;
    const want = Math.min(left, MiB);
    while (length < want) {
      const line = next();
      parts.push(line);
      length += line.length; // ASCII only
    }
    let buffer = Buffer.from(parts.join(''), 'latin1');
    if (buffer.length >= left) {
      buffer = buffer.subarray(0, left);
      buffer[buffer.length - 1] = 0x0a;
    }
    left -= buffer.length;
    yield buffer;
  }
}

function contentOf(file: DatasetFile, label: string): Generator<Buffer> {
  const tenant = file.path.split('/')[1] ?? 'tenant';
  const rng = new Rng(`${label}:${file.path}`);
  if (file.kind === 'csv') return textChunks(csvLines(rng, tenant), file.size);
  if (file.kind === 'log') return textChunks(logLines(rng, tenant), file.size);
  const stream = keystream(`${label}:${file.path}`);
  return (function* () {
    for (let left = file.size; left > 0; left -= MiB) yield stream(Math.min(left, MiB));
  })();
}

async function writeFileFrom(path: string, chunks: Iterable<Buffer>, flags = 'w'): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, flags);
  try {
    for (const chunk of chunks) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

/**
 * Reads a byte of every file under `root`, as documents are read after they are written: under relatime this
 * moves each atime past its mtime once, so the tools' own reads later leave it alone and "nothing changed" holds
 * for every tool whatever the order they run in (a tool that stores atimes would otherwise see the others' reads
 * as changes). After a pause: an atime within the mtime's clock tick would not be past it.
 */
async function readEachOnce(root: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  const byte = Buffer.alloc(1);
  for await (const path of walkFiles(root)) {
    const handle = await open(join(root, path), 'r');
    try {
      await handle.read(byte, 0, 1, 0);
    } finally {
      await handle.close();
    }
  }
}

/** Draws file sizes (80% small, 17% medium, 3% large) until `budget` bytes; the last is cut to fit. */
function drawSizes(rng: Rng, budget: number): number[] {
  const sizes: number[] = [];
  let left = budget;
  while (left > 0) {
    const r = rng.float();
    const size =
      r < 0.8
        ? rng.logUniform(KiB, 64 * KiB)
        : r < 0.97
          ? rng.logUniform(64 * KiB, 4 * MiB)
          : rng.logUniform(4 * MiB, 64 * MiB);
    sizes.push(Math.min(size, left));
    left -= size;
  }
  return sizes;
}

const TENANTS = 24;

function layout(seed: string, textBytes: number, randomBytes: number): DatasetFile[] {
  const rng = new Rng(`${seed}:layout`);
  const files: DatasetFile[] = [];
  const tenant = () => `tenant-${String(1 + rng.int(TENANTS)).padStart(2, '0')}`;
  let n = 0;
  for (const size of drawSizes(rng, textBytes)) {
    n++;
    if (rng.float() < 0.5) files.push({ path: `tenants/${tenant()}/exports/orders-${n}.csv`, kind: 'csv', size });
    else files.push({ path: `tenants/${tenant()}/logs/app-${n}.log`, kind: 'log', size });
  }
  for (const size of drawSizes(rng, randomBytes)) {
    n++;
    const month = `2025-${String(1 + rng.int(12)).padStart(2, '0')}`;
    files.push({ path: `tenants/${tenant()}/documents/${month}/upload-${n}.bin`, kind: 'random', size });
  }
  return files;
}

/**
 * A pg_dump of a pgbench-schema database: `pgbench -i -I dt` creates the four tables, SQL fills them
 * (accounts with seeded balances, a history of seeded transactions with fixed timestamps; hashint4
 * makes the values deterministic), primary keys as pgbench adds them, then `pg_dump` writes plain SQL.
 */
async function generateDump(workDir: string, target: string, seed: string, bytes: number): Promise<Dataset['dump']> {
  // A dumped accounts row is ~100 bytes (84 blank filler characters), a history row ~55.
  const scale = Math.max(1, Math.round((bytes * 0.6) / (100_000 * 100)));
  const historyRows = Math.max(1000, Math.round((bytes - scale * 100_000 * 100) / 55));
  const salt = new Rng(`${seed}:dump`).int(1_000_000);
  const server = await startPostgres(workDir);
  try {
    const env = { ...process.env, ...server.env };
    const logFile = join(workDir, 'postgres', 'dump.log');
    await server.psql('CREATE DATABASE bench');
    await runCommand(systemTool('pgbench', 'postgresql-client'), ['-i', '-I', 'dt', '-s', String(scale), 'bench'], {
      env,
      logFile,
    });
    await server.psql(
      `
      INSERT INTO pgbench_branches SELECT b, 0, NULL FROM generate_series(1, ${scale}) b;
      INSERT INTO pgbench_tellers SELECT t, (t - 1) / 10 + 1, 0, NULL FROM generate_series(1, ${10 * scale}) t;
      INSERT INTO pgbench_accounts
        SELECT a, (a - 1) / 100000 + 1, (hashint4(a + ${salt}) % 50000), '' FROM generate_series(1, ${100_000 * scale}) a;
      INSERT INTO pgbench_history
        SELECT (hashint4(i + ${salt})::bigint & 2147483647) % ${10 * scale} + 1, (hashint4(i + ${salt} + 1)::bigint & 2147483647) % ${scale} + 1,
               (hashint4(i + ${salt} + 2)::bigint & 2147483647) % ${100_000 * scale} + 1, hashint4(i + ${salt} + 3) % 5000,
               timestamp '2025-01-01 00:00:00' + i * interval '7 milliseconds', NULL
        FROM generate_series(1, ${historyRows}) i;
      ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
      ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
      ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
      `,
      'bench',
    );
    await mkdir(dirname(target), { recursive: true });
    await runCommand(systemTool('pg_dump', 'postgresql-client'), ['-d', 'bench', '--no-owner', '-f', target], {
      env,
      logFile,
    });
    const version = (await server.psql('SHOW server_version')).trim();
    return { scale, historyRows, postgres: version };
  } finally {
    await server.stop();
  }
}

/** Generates the data set into `root` (which must not exist); `workDir` holds the temporary PostgreSQL. */
export async function generateDataset(
  root: string,
  workDir: string,
  totalBytes: number,
  seed: string,
): Promise<Dataset> {
  await mkdir(root, { recursive: true });
  const dumpPath = 'db/pgbench.sql';
  const dump = await generateDump(workDir, join(root, dumpPath), seed, Math.round(totalBytes * 0.25));
  const dumpSize = (await stat(join(root, dumpPath))).size;
  const rest = totalBytes - dumpSize;
  const textBytes = Math.round(rest * 0.55);
  const files: DatasetFile[] = [
    { path: dumpPath, kind: 'dump', size: dumpSize },
    ...layout(seed, textBytes, rest - textBytes),
  ];
  for (const file of files) if (file.kind !== 'dump') await writeFileFrom(join(root, file.path), contentOf(file, seed));
  await readEachOnce(root);
  const bytesByKind: Record<FileKind, number> = { csv: 0, log: 0, random: 0, dump: 0 };
  for (const file of files) bytesByKind[file.kind] += file.size;
  return { root, files, seed, bytesByKind, totalBytes, dump };
}

/** Changes ~`fraction` of the data set's bytes, reproducibly (see the file comment); `round` 1, 2, ... differ. */
export async function mutateDataset(dataset: Dataset, round = 1, fraction = 0.01): Promise<Mutation> {
  const rng = new Rng(`${dataset.seed}:mutate:${round}`);
  const target = dataset.totalBytes * fraction;
  const m: Mutation = {
    rewrittenFiles: 0,
    rewrittenBytes: 0,
    appendedFiles: 0,
    appendedBytes: 0,
    regions: 0,
    regionBytes: 0,
    newFiles: 0,
    newBytes: 0,
    deletedFiles: 0,
    deletedBytes: 0,
    changedBytes: 0,
  };
  const label = `${dataset.seed}:v${round + 1}`;
  const of = (kind: FileKind, max = Number.POSITIVE_INFINITY) =>
    rng.shuffle(dataset.files.filter((f) => f.kind === kind && f.size <= max));

  // 30%: rewrite whole CSV exports (new rows, same size).
  for (const file of of('csv', 4 * MiB)) {
    if (m.rewrittenBytes >= target * 0.3) break;
    await writeFileFrom(join(dataset.root, file.path), contentOf(file, label));
    m.rewrittenFiles++;
    m.rewrittenBytes += file.size;
  }
  // 25%: append new lines to logs (10% of each file, at least 4 KiB).
  for (const file of of('log')) {
    if (m.appendedBytes >= target * 0.25) break;
    const size = Math.max(4 * KiB, Math.round(file.size * 0.1));
    const extra = { ...file, size };
    await writeFileFrom(join(dataset.root, file.path), contentOf(extra, `${label}:append`), 'a');
    file.size += size;
    m.appendedFiles++;
    m.appendedBytes += size;
  }
  // 35%: overwrite a few regions (64 KiB-1 MiB) in place, half in the dump (with text from elsewhere in it),
  // half in large uploads.
  const regions = async (file: DatasetFile, budget: number, fill: (length: number) => Promise<Buffer>) => {
    const handle = await open(join(dataset.root, file.path), 'r+');
    try {
      for (let done = 0; done < budget; ) {
        const length = Math.min(rng.logUniform(64 * KiB, MiB), file.size);
        const offset = rng.int(file.size - length + 1);
        const data = await fill(length);
        await handle.write(data, 0, length, offset);
        done += length;
        m.regions++;
        m.regionBytes += length;
      }
    } finally {
      await handle.close();
    }
  };
  const dumpFile = dataset.files.find((f) => f.kind === 'dump') as DatasetFile;
  const dumpHandle = await open(join(dataset.root, dumpFile.path), 'r');
  try {
    await regions(dumpFile, target * 0.175, async (length) => {
      const data = Buffer.alloc(length);
      await dumpHandle.read(data, 0, length, rng.int(dumpFile.size - length + 1));
      return data;
    });
  } finally {
    await dumpHandle.close();
  }
  const large = of('random').filter((f) => f.size >= 4 * MiB);
  const stream = keystream(`${label}:regions`);
  for (let i = 0; m.regionBytes < target * 0.35 && large.length > 0; i++) {
    await regions(large[i % large.length] as DatasetFile, 1, async (length) => stream(length));
  }
  // 10%: new files (a CSV export and a log per tenant picked); and a few small uploads deleted.
  for (let n = 0; m.newBytes < target * 0.1; n++) {
    const tenant = `tenant-${String(1 + rng.int(TENANTS)).padStart(2, '0')}`;
    const kind = n % 2 === 0 ? 'csv' : 'log';
    const file: DatasetFile = {
      path: `tenants/${tenant}/${kind === 'csv' ? 'exports/orders' : 'logs/app'}-new-${round}-${n}.${kind}`,
      kind,
      size: rng.logUniform(64 * KiB, 2 * MiB),
    };
    await writeFileFrom(join(dataset.root, file.path), contentOf(file, label));
    dataset.files.push(file);
    m.newFiles++;
    m.newBytes += file.size;
  }
  for (const file of of('random', 64 * KiB).slice(0, 8)) {
    await rm(join(dataset.root, file.path));
    dataset.files.splice(dataset.files.indexOf(file), 1);
    m.deletedFiles++;
    m.deletedBytes += file.size;
  }
  m.changedBytes = m.rewrittenBytes + m.appendedBytes + m.regionBytes + m.newBytes;
  dataset.totalBytes = dataset.files.reduce((sum, f) => sum + f.size, 0);
  await readEachOnce(dataset.root);
  return m;
}

async function* walkFiles(root: string, dir = root): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(root, path);
    else yield relative(root, path);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of every file under `root`, by relative path (16 files hashed at once: 200,000 small files add up). */
export async function manifest(root: string): Promise<Map<string, string>> {
  const paths: string[] = [];
  for await (const path of walkFiles(root)) paths.push(path);
  const hashes: string[] = new Array(paths.length);
  let next = 0;
  const hasher = async () => {
    for (let i = next++; i < paths.length; i = next++) hashes[i] = await sha256File(join(root, paths[i] as string));
  };
  await Promise.all(Array.from({ length: 16 }, hasher));
  return new Map(paths.map((path, i) => [path, hashes[i] as string]));
}

/** Throws unless `root` holds exactly the files of `expected` with the same contents. */
export async function verifyTree(root: string, expected: Map<string, string>): Promise<void> {
  const actual = await manifest(root);
  const problems: string[] = [];
  for (const [path, hash] of expected) {
    const got = actual.get(path);
    if (got === undefined) problems.push(`missing ${path}`);
    else if (got !== hash) problems.push(`differs ${path}`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) problems.push(`unexpected ${path}`);
  if (problems.length)
    throw new Error(`restore of ${root} is wrong (${problems.length} problems): ${problems.slice(0, 5).join(', ')}`);
}

/** The "many small files" data set: what a document volume looks like. */
export interface SmallFilesDataset {
  root: string;
  seed: string;
  files: number;
  dirs: number;
  totalBytes: number;
}

const SMALL_FILES_PER_DIR = 200;
const SMALL_DIRS_PER_GROUP = 50;

/**
 * `files` text files of 1–4 KiB (uniform; 200,000 of them are ~488 MiB), half CSV exports and half logs,
 * 200 to a directory, 50 directories to a group: `group-NN/dir-NNN/doc-N.{csv,log}`. Deterministic for a seed.
 * Written `parallel` at a time (one file at a time would take minutes for 200,000).
 */
export async function generateSmallFiles(
  root: string,
  seed: string,
  files: number,
  parallel = 32,
): Promise<SmallFilesDataset> {
  const rng = new Rng(`${seed}:small-files`);
  const plan: { path: string; kind: 'csv' | 'log'; size: number }[] = [];
  for (let n = 0; n < files; n++) {
    const dir = Math.floor(n / SMALL_FILES_PER_DIR);
    const group = Math.floor(dir / SMALL_DIRS_PER_GROUP);
    const kind = rng.int(2) === 0 ? 'csv' : 'log';
    const path = `group-${String(group).padStart(2, '0')}/dir-${String(dir).padStart(3, '0')}/doc-${n}.${kind}`;
    plan.push({ path, kind, size: KiB + rng.int(3 * KiB + 1) });
  }
  const dirs = new Set(plan.map((f) => dirname(f.path)));
  for (const dir of dirs) await mkdir(join(root, dir), { recursive: true });
  let next = 0;
  const writer = async () => {
    for (let i = next++; i < plan.length; i = next++) {
      const file = plan[i] as (typeof plan)[number];
      await writeFile(join(root, file.path), Buffer.concat([...contentOf(file, seed)]));
    }
  };
  await Promise.all(Array.from({ length: parallel }, writer));
  await readEachOnce(root);
  return { root, seed, files, dirs: dirs.size, totalBytes: plan.reduce((sum, f) => sum + f.size, 0) };
}
