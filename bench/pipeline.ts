// Backup throughput of the repository pipeline alone (no restic/kopia): backs up a directory into a fresh
// file:// repository and prints CPU seconds (user+sys of this process and its worker threads), wall seconds
// and MB/s. Usage: tsx bench/pipeline.ts <dir> [scratch]  — with no <dir> existing, generates a ~300 MiB
// data set (bench/dataset.ts, needs PostgreSQL for the dump) there first.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupTree } from '../src/repository/backup.ts';
import { Repository } from '../src/repository/repository.ts';
import { openStorage } from '../src/repository/storage/url.ts';
import { generateDataset } from './dataset.ts';

const MiB = 1024 * 1024;
const [dir = join(tmpdir(), 'tidemark-pipeline-data'), scratchArg] = process.argv.slice(2);
if (!existsSync(dir)) {
  const work = await mkdtemp(join(tmpdir(), 'tidemark-pipeline-gen-'));
  await generateDataset(dir, work, 300 * MiB, 'pipeline');
  await rm(work, { recursive: true, force: true });
}
const scratch = scratchArg ?? (await mkdtemp(join(tmpdir(), 'tidemark-pipeline-repo-')));
const passphrase = Buffer.from('bench');
const repository = await Repository.init(openStorage(`file://${join(scratch, 'repo')}`), passphrase, {
  scrypt: { N: 2 ** 10, r: 8, p: 1 },
});
const cpu = process.cpuUsage();
const mainCpu = process.threadCpuUsage();
const started = performance.now();
const snapshot = await backupTree(repository, dir, { type: 'full', source: 'bench' });
const wall = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
const mainUsed = process.threadCpuUsage(mainCpu);
const cpuSeconds = (used.user + used.system) / 1e6;
const mb = snapshot.summary.logicalBytes / 1e6;
console.log(
  `${mb.toFixed(0)} MB in ${wall.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s CPU (user+sys, all threads), ` +
    `${((mainUsed.user + mainUsed.system) / 1e6).toFixed(2)} s of it on the main thread: ` +
    `${(mb / wall).toFixed(0)} MB/s, stored ${(snapshot.summary.uploadedBytes / 1e6).toFixed(0)} MB`,
);
if (!scratchArg) await rm(scratch, { recursive: true, force: true });
