// Bytes read from the primary when replicating (R-REPL, issue 14), and writes the section between
// <!-- replication:start --> and <!-- replication:end --> of BENCHMARKS.md (not run in CI):
//
//   npm run bench:replication [-- --size-mib 300 --seed S --keep --out FILE]
//
// The benchmark data set (bench/dataset.ts: a pg_dump, CSV exports, logs, incompressible documents) of
// --size-mib is backed up into a file:// primary, ~1% of it changes (mutateDataset) and it is backed up
// again (incremental). Each snapshot is then copied, in order, into two replicas: one sharing the
// primary's chunk identity (openReplica, the new path) and one with its own id key (Repository.init, the
// re-identifying path replicas created before kept). The primary's storage counts every byte read
// (storage/counting.ts) during each copy, including the index read again under the copy's lock. CPU time is
// process.cpuUsage (user+sys) of this process, which does nothing else meanwhile; the machine is shared,
// so wall times are noisy. The work directory is removed at the end (kept with --keep).
import { availableParallelism, cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backupTree } from '../src/repository/backup.ts';
import { copySnapshots } from '../src/repository/copy.ts';
import { prefixes } from '../src/repository/format.ts';
import { openReplica } from '../src/repository/replica.ts';
import { Repository } from '../src/repository/repository.ts';
import type { Snapshot } from '../src/repository/snapshot.ts';
import { counting } from '../src/repository/storage/counting.ts';
import { FileStorage } from '../src/repository/storage/file.ts';
import { formatBytes } from '../src/units.ts';
import { repoRoot } from '../test/harness/tools.ts';
import { makeWorkDir } from '../test/harness/workdir.ts';
import { generateDataset, mutateDataset } from './dataset.ts';
import { writeSections } from './section.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '300' },
    seed: { type: 'string', default: 'tidemark-bench-1' },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
  },
});
const args = process.argv.slice(2);
const commandLine = `npm run bench:replication${args.length ? ` -- ${args.join(' ')}` : ''}`;
const totalBytes = Math.round(Number(values['size-mib']) * 1024 ** 2);
const PRIMARY_KEY = Buffer.from('tidemark-bench-primary');
const REPLICA_KEY = Buffer.from('tidemark-bench-replica');
const log = (message: string) => process.stdout.write(`bench:replication: ${message}\n`);

interface CopyRun {
  replica: 'shared identity (new)' | 'own id key (old)';
  snapshot: 'first copy' | '1% change';
  identity: string;
  readBytes: number;
  packBytes: number;
  gets: number;
  uploadedBytes: number;
  cpuSeconds: number;
  wallSeconds: number;
}

async function main(): Promise<void> {
  const work = makeWorkDir('bench-replication');
  try {
    log(`generating ${values['size-mib']} MiB in ${work.path}`);
    const dataset = await generateDataset(join(work.path, 'data'), work.path, totalBytes, values.seed as string);
    const primaryStorage = counting(new FileStorage(join(work.path, 'primary')));
    const primary = await Repository.init(primaryStorage, PRIMARY_KEY);
    log('backing up (full)');
    const full = await backupTree(primary, dataset.root, { type: 'full', source: 'bench' });
    const mutation = await mutateDataset(dataset);
    log(`changed ${formatBytes(mutation.changedBytes)}; backing up (incremental)`);
    const incremental = await backupTree(await Repository.open(primaryStorage, PRIMARY_KEY), dataset.root, {
      type: 'incremental',
      parent: full,
      source: 'bench',
    });

    const runs: CopyRun[] = [];
    for (const replica of ['shared identity (new)', 'own id key (old)'] as const) {
      const storage = new FileStorage(join(work.path, replica.startsWith('shared') ? 'replica-shared' : 'replica-own'));
      const opened = await Repository.open(primaryStorage, PRIMARY_KEY);
      if (replica.startsWith('shared')) await openReplica(opened, storage, REPLICA_KEY);
      else await Repository.init(storage, REPLICA_KEY);
      for (const [snapshot, label] of [
        [full, 'first copy'],
        [incremental, '1% change'],
      ] as [Snapshot, CopyRun['snapshot']][]) {
        const source = await Repository.open(primaryStorage, PRIMARY_KEY);
        const destination = await Repository.open(storage, REPLICA_KEY);
        primaryStorage.reset();
        const cpu = process.cpuUsage();
        const started = performance.now();
        const report = await copySnapshots(source, destination, [snapshot]);
        const used = process.cpuUsage(cpu);
        runs.push({
          replica,
          snapshot: label,
          identity: report.identity,
          readBytes: primaryStorage.bytesRead(),
          packBytes: primaryStorage.bytesRead(prefixes.data),
          gets: primaryStorage.reads.length,
          uploadedBytes: report.uploadedBytes,
          cpuSeconds: (used.user + used.system) / 1e6,
          wallSeconds: (performance.now() - started) / 1000,
        });
        log(`${replica}, ${label}: read ${formatBytes(primaryStorage.bytesRead())} from the primary`);
      }
    }
    await writeSections(values.out as string, {
      replication: render({ logical: incremental.summary.logicalBytes, files: dataset.files.length, mutation, runs }),
    });
    log(`wrote the replication section of ${values.out}`);
  } finally {
    if (values.keep) log(`kept ${work.path}`);
    else work.remove();
  }
}

function render(input: {
  logical: number;
  files: number;
  mutation: { changedBytes: number };
  runs: CopyRun[];
}): string {
  const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  const find = (replica: string, snapshot: string) =>
    input.runs.find((r) => r.replica.startsWith(replica) && r.snapshot === snapshot) as CopyRun;
  const [fresh, old] = [find('shared', '1% change'), find('own', '1% change')];
  return [
    '## Replication: bytes read from the primary',
    '',
    '<!-- Generated by bench/replication.ts; do not edit by hand: rerun `npm run bench:replication` instead. -->',
    '',
    `Command: \`${commandLine}\` on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ` +
      `${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), Linux ${release()}; file:// repositories.`,
    '',
    `Data set: bench/dataset.ts at ${values['size-mib']} MiB (${input.files} files: a pg_dump, CSV, logs, incompressible documents); ` +
      `snapshot ${mib(input.logical)}; the 1% change (mutateDataset) wrote ${mib(input.mutation.changedBytes)}. ` +
      'Each snapshot is copied in turn into a replica sharing the primary’s chunk identity (new) and into one with its own id key (old, re-identifying). ' +
      '"Read" counts every byte the primary’s storage returned during the copy (packs, plus index files read again under the copy’s lock, keys and locks); CPU is user+sys of the copying process (the machine is shared: wall times are noisy).',
    '',
    '| Replica | Copy | Read from primary | of which packs | Reads | Uploaded | CPU s | Wall s |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...input.runs.map(
      (r) =>
        `| ${r.replica} | ${r.snapshot} | ${mib(r.readBytes)} | ${mib(r.packBytes)} | ${r.gets} | ${mib(r.uploadedBytes)} | ${r.cpuSeconds.toFixed(1)} | ${r.wallSeconds.toFixed(1)} |`,
    ),
    '',
    `A 1% change reads ${mib(fresh.readBytes)} from the primary with a shared chunk identity against ${mib(old.readBytes)} re-identifying ` +
      `(${(old.readBytes / Math.max(1, fresh.readBytes)).toFixed(0)}× less; ${((100 * fresh.readBytes) / find('shared', 'first copy').readBytes).toFixed(1)}% of what the first copy read): ` +
      'the trees and the chunks the replica lacks. The first copy reads everything either way.',
  ].join('\n');
}

await main();
