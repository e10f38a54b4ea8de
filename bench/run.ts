import { mkdir, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCommand } from '../test/harness/process.ts';
import { repoRoot } from '../test/harness/tools.ts';
import { makeWorkDir } from '../test/harness/workdir.ts';
import { type Dataset, generateDataset, generateSmallFiles, manifest, mutateDataset, verifyTree } from './dataset.ts';
import { buildTidemark, type Command, diskBytes, measure, run } from './measure.ts';
import { summarizeProfile } from './profile.ts';
import {
  type BigSetInput,
  type ProfileRun,
  type ReportInput,
  renderReport,
  type Scenario,
  type StepResult,
} from './report.ts';
import { writeSections } from './section.ts';
import { type BenchTool, makeTools, TOOL_NAMES, type ToolName } from './tools.ts';

const { values } = parseArgs({
  options: {
    set: { type: 'string', default: 'all' },
    'size-gib': { type: 'string', default: '2' },
    'small-files': { type: 'string', default: '200000' },
    repeat: { type: 'string', default: '3' },
    tools: { type: 'string', default: TOOL_NAMES.join(',') },
    seed: { type: 'string', default: 'tidemark-bench-1' },
    'no-profile': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
  },
});
const toolNames = (values.tools as string).split(',').map((name) => {
  if (!(TOOL_NAMES as readonly string[]).includes(name)) throw new Error(`unknown tool ${name}`);
  return name as ToolName;
});
if (!['all', 'big', 'small-files'].includes(values.set as string))
  throw new Error(`--set must be all, big or small-files, not ${values.set}`);
const runBig = values.set !== 'small-files';
const runSmallFiles = values.set !== 'big';
const totalBytes = Math.round(Number(values['size-gib']) * 1024 ** 3);
const smallFiles = Number(values['small-files']);
const repeat = Math.max(1, Number(values.repeat));
const args = process.argv.slice(2);
const commandLine = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;

const log = (message: string) => process.stdout.write(`bench: ${message}\n`);
const started = Date.now();
const work = makeWorkDir('bench');
const logFile = join(work.path, 'bench.log');
let removed = false;
const cleanUp = () => {
  if (removed) return;
  removed = true;
  if (values.keep) log(`kept ${work.path}`);
  else work.remove();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });

async function build(): Promise<void> {
  await buildTidemark(logFile, log);
  if (toolNames.includes('restic') || toolNames.includes('kopia')) {
    log('building restic and kopia (scripts/build-bench-tools.sh; cached)');
    await runCommand('bash', [join(repoRoot, 'scripts', 'build-bench-tools.sh')], { logFile });
  }
}

/** Flushes dirty pages (the data set just written, the previous tool's repository or restore). */
const sync = () => run({ command: 'sync', args: [] }, logFile);

async function step(tool: BenchTool, scenario: Scenario, cmd: Command, sourceBytes: number): Promise<StepResult> {
  await sync();
  const m = await measure(cmd, logFile, work.path);
  const storedBytes = await diskBytes(tool.repo);
  log(
    `${tool.name.padEnd(8)} ${scenario.padEnd(11)} ${m.wallS.toFixed(1).padStart(6)} s wall, ${(m.userS + m.sysS).toFixed(1).padStart(6)} s CPU, ${m.maxRssMiB.toFixed(0).padStart(5)} MiB RSS, ${(storedBytes / 1024 ** 2).toFixed(1)} MiB stored`,
  );
  return { tool: tool.name, scenario, m, storedBytes, sourceBytes };
}

/** Tidemark's three steps again, each under `node --cpu-prof`, against a fresh repository. */
async function profileTidemark(dataset: Dataset): Promise<ProfileRun[]> {
  const [tool] = makeTools({ data: dataset.root, workDir: join(work.path, 'profile'), logFile }, ['tidemark']);
  if (!tool) return [];
  await tool.init();
  const runs: ProfileRun[] = [];
  const profiled = async (scenario: Scenario, cmd: Command) => {
    const dir = join(work.path, 'profile', `cpuprof-${scenario}`);
    await mkdir(dir, { recursive: true });
    await sync();
    const m = await measure({ ...cmd, args: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...cmd.args] }, logFile, work.path);
    const summary = await summarizeProfile(dir);
    log(
      `profiled tidemark ${scenario}: ${m.wallS.toFixed(1)} s, main thread busy ${(summary.busyMs / 1000).toFixed(1)} s`,
    );
    runs.push({ scenario, summary, m });
  };
  await profiled('first', tool.backup('first'));
  await mutateDataset(dataset, 2);
  await profiled('incremental', tool.backup('incremental'));
  const target = join(work.path, 'profile', 'restore');
  await profiled('restore', await tool.restore(target));
  await rm(target, { recursive: true, force: true });
  return runs;
}

/** One repository per tool and repetition under `dir`; the order of the tools rotates from one repetition to the next. */
async function roundsOfTools(data: string, dir: string): Promise<BenchTool[][]> {
  const rounds = Array.from({ length: repeat }, (_, r) => {
    const tools = makeTools({ data, workDir: join(dir, `round-${r + 1}`), logFile }, toolNames);
    return [...tools.slice(r % tools.length), ...tools.slice(0, r % tools.length)];
  });
  for (const tools of rounds) for (const tool of tools) await tool.init();
  return rounds;
}

/** Every tool's restore of its latest snapshot (the first repetition's checked against `data`), then the repositories removed. */
async function restores(rounds: BenchTool[][], data: string, sourceBytes: number): Promise<StepResult[]> {
  const results: StepResult[] = [];
  const expected = await manifest(data);
  for (const [r, tools] of rounds.entries())
    for (const tool of tools) {
      const target = join(work.path, `restore-${tool.name}`);
      results.push(await step(tool, 'restore', await tool.restore(target), sourceBytes));
      if (r === 0) await verifyTree(target, expected); // the first repetition's restores are checked
      await rm(target, { recursive: true, force: true });
    }
  for (const tools of rounds) for (const tool of tools) await rm(tool.repo, { recursive: true, force: true });
  return results;
}

async function benchBig(): Promise<BigSetInput> {
  const data = join(work.path, 'data');
  log(`generating ${(totalBytes / 1024 ** 3).toFixed(2)} GiB data set in ${data}`);
  const dataset = await generateDataset(data, work.path, totalBytes, values.seed as string);
  const firstFiles = dataset.files.length;
  const firstBytes = dataset.totalBytes;
  const bytesByKind = { ...dataset.bytesByKind };
  log(
    `data set: ${firstFiles} files, ${firstBytes} bytes (generated in ${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );

  const rounds = await roundsOfTools(data, work.path);

  const results: StepResult[] = [];
  for (const tools of rounds)
    for (const tool of tools) results.push(await step(tool, 'first', tool.backup('first'), firstBytes));
  const mutation = await mutateDataset(dataset);
  log(`changed ${mutation.changedBytes} bytes (${((mutation.changedBytes / firstBytes) * 100).toFixed(2)}%)`);
  for (const tools of rounds)
    for (const tool of tools)
      results.push(await step(tool, 'incremental', tool.backup('incremental'), dataset.totalBytes));

  results.push(...(await restores(rounds, data, dataset.totalBytes)));
  const profiles = toolNames.includes('tidemark') && !values['no-profile'] ? await profileTidemark(dataset) : [];
  await rm(data, { recursive: true, force: true });
  return {
    dataset: {
      seed: dataset.seed,
      files: firstFiles,
      totalBytes: firstBytes,
      bytesByKind,
      dump: dataset.dump,
      afterFiles: dataset.files.length,
      afterBytes: dataset.totalBytes,
    },
    mutation,
    results,
    profiles,
  };
}

async function benchSmallFiles(): Promise<NonNullable<ReportInput['smallFiles']>> {
  const data = join(work.path, 'small-files');
  log(`generating ${smallFiles} small files in ${data}`);
  const generated = Date.now();
  const dataset = await generateSmallFiles(data, values.seed as string, smallFiles);
  log(
    `small files: ${dataset.files} files, ${dataset.totalBytes} bytes (generated in ${((Date.now() - generated) / 1000).toFixed(0)} s)`,
  );
  const rounds = await roundsOfTools(data, join(work.path, 'small-files-tools'));
  const results: StepResult[] = [];
  for (const scenario of ['first', 'unchanged'] as const)
    for (const tools of rounds)
      for (const tool of tools)
        results.push(
          await step(tool, scenario, tool.backup(scenario === 'first' ? 'first' : 'incremental'), dataset.totalBytes),
        );
  results.push(...(await restores(rounds, data, dataset.totalBytes)));
  await rm(data, { recursive: true, force: true });
  return { dataset, results };
}

async function main(): Promise<void> {
  const load = loadavg()[0] ?? 0;
  if (load > 0.5)
    log(`WARNING: load average ${load.toFixed(1)} before the run: other processes will add noise (see others' CPU)`);
  await build();
  const versions = [];
  for (const tool of makeTools({ data: work.path, workDir: work.path, logFile }, toolNames))
    versions.push({ name: tool.name, version: await tool.version(), settings: tool.settings });
  const big = runBig ? await benchBig() : undefined;
  const small = runSmallFiles ? await benchSmallFiles() : undefined;

  const sections = renderReport({
    command: commandLine,
    date: new Date(started),
    durationS: (Date.now() - started) / 1000,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      nproc: availableParallelism(),
      memoryGiB: totalmem() / 1024 ** 3,
      kernel: release(),
      node: process.version,
      filesystem:
        (await run({ command: 'df', args: ['--output=fstype,source', work.path] }, logFile))
          .trim()
          .split('\n')
          .at(-1)
          ?.trim()
          .replace(/\s+/, ' on ') ?? 'unknown',
    },
    tools: versions,
    ...(big ? { big } : {}),
    ...(small ? { smallFiles: small } : {}),
    tolerance: 0.05,
    repeat,
  });
  await writeSections(values.out as string, sections);
  log(`wrote ${values.out} in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(
    `bench: ${(error as Error).message}\n(the log of every command: ${logFile}; use --keep to keep it)\n`,
  );
  process.exitCode = 1;
} finally {
  cleanUp();
}
