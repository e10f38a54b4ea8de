// The dump statistics scanners alone (not run in CI): `npm run bench:dump-stats -- [--mib 256] [--print]`.
// Builds a synthetic plain-SQL dump per engine in memory (pg_dump COPY text, mariadb-dump extended
// INSERTs; a table with an integer key and a timestamp column, one with a key only, one without
// either), feeds it in 64 KiB chunks (a pipe read's size) to the scanner with statistics on, and
// prints the CPU time of this thread (best of three) and the statistics' own hash, so a change to the
// scanners can be checked to give exactly the same statistics (`--print` shows them whole).
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DumpRowCounter, type MySQLTablePlan } from '../src/sources/mysql/dump-rows.ts';
import { CopyCounter } from '../src/sources/postgres/copy-counter.ts';
import type { ObjectCount } from '../src/sources/source.ts';
import type { TableColumns } from '../src/sources/table-stats.ts';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const { values } = parseArgs({
  options: { mib: { type: 'string', default: '256' }, print: { type: 'boolean', default: false } },
});
const totalBytes = Number(values.mib) * MiB;

/** Deterministic filler text (an md5 per row, as the bench's populate writes). */
const filler = (i: number) => createHash('md5').update(String(i)).digest('hex');
const timestamp = (i: number) =>
  new Date(Date.UTC(2024, 0, 1) + ((i * 7919) % 86_400_000) * 1000).toISOString().replace('T', ' ').slice(0, 23);

interface Table {
  name: string;
  columns: string[];
  plan: TableColumns;
  row: (i: number) => (string | number)[];
}

const TABLES: Table[] = [
  {
    name: 'events',
    columns: ['id', 'account', 'happened_at', 'note'],
    plan: { key: 'id', timestamp: 'happened_at' },
    row: (i) => [i, i % 1000, timestamp(i), `event ${i} ${filler(i)}`],
  },
  {
    name: 'accounts',
    columns: ['aid', 'bid', 'abalance', 'filler'],
    plan: { key: 'aid' },
    row: (i) => [i, 1 + Math.floor(i / 100_000), 0, `account ${i} of branch ${filler(i)}`],
  },
  { name: 'log', columns: ['line', 'text'], plan: {}, row: (i) => [i % 97, `line ${filler(i)}`] },
];

/** A third of `totalBytes` per table. */
function dump(statement: (table: Table, rows: string[]) => string, format: (values: (string | number)[]) => string) {
  const parts: Buffer[] = [];
  for (const table of TABLES) {
    let bytes = 0;
    for (let i = 1; bytes < totalBytes / TABLES.length; ) {
      const rows: string[] = [];
      for (let n = 0; n < 5000; n++, i++) rows.push(format(table.row(i)));
      const part = Buffer.from(statement(table, rows));
      parts.push(part);
      bytes += part.length;
    }
  }
  return Buffer.concat(parts);
}

const postgresDump = () =>
  Buffer.concat([
    Buffer.from('SET standard_conforming_strings = on;\n'),
    dump(
      (t, rows) => `COPY public.${t.name} (${t.columns.join(', ')}) FROM stdin;\n${rows.join('\n')}\n\\.\n\n`,
      (v) => v.join('\t'),
    ),
  ]);
const mariadbDump = () =>
  dump(
    (t, rows) => `INSERT INTO \`${t.name}\` VALUES ${rows.join(',')};\n`,
    (v) => `(${v.map((x) => (typeof x === 'number' ? x : `'${x}'`)).join(',')})`,
  );

function measure(name: string, data: Buffer, scan: (chunks: Buffer[]) => ObjectCount[]) {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += CHUNK) chunks.push(data.subarray(at, at + CHUNK));
  let best = Number.POSITIVE_INFINITY;
  let objects: ObjectCount[] = [];
  for (let round = 0; round < 3; round++) {
    const before = process.cpuUsage();
    objects = scan(chunks);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  const rows = objects.reduce((sum, o) => sum + o.records, 0);
  const digest = createHash('sha256').update(JSON.stringify(objects)).digest('hex').slice(0, 16);
  process.stdout.write(
    `${name.padEnd(9)} ${(data.length / MiB).toFixed(0)} MiB, ${rows} rows: ${best.toFixed(2)} s CPU, ${(data.length / MiB / best).toFixed(0)} MiB/s, ${((best * 1e9) / rows).toFixed(0)} ns/row; statistics ${digest}\n`,
  );
  if (values.print) process.stdout.write(`${JSON.stringify(objects, null, 1)}\n`);
}

measure('postgres', postgresDump(), (chunks) => {
  const counter = new CopyCounter({ stats: new Map(TABLES.map((t) => [`public.${t.name}`, t.plan])) });
  for (const chunk of chunks) counter.write(chunk);
  counter.end();
  return counter.objects();
});
measure('mariadb', mariadbDump(), (chunks) => {
  const plans = new Map<string, MySQLTablePlan>(TABLES.map((t) => [t.name, { ...t.plan, columns: t.columns }]));
  const counter = new DumpRowCounter({ stats: plans });
  for (const chunk of chunks) counter.push(chunk);
  counter.end();
  return counter.objects();
});
