import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { NODE_COMMAND, NODE_RUNTIME_FLAGS } from '../src/cli/runtime-flags.ts';
import { runCommand } from '../test/harness/process.ts';
import { repoRoot, systemTool } from '../test/harness/tools.ts';
import { makeWorkDir } from '../test/harness/workdir.ts';
import { type BenchServer, ENGINES, type Engine } from './database-engines.ts';
import { buildTidemark, type Command, diskBytes, type Measurement, measure, run } from './measure.ts';
import { type ProfileSummary, summarizeProfile } from './profile.ts';
import { writeSections } from './section.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'size-gib': { type: 'string', default: '1' },
    scale: { type: 'string' },
    repeat: { type: 'string', default: '2' },
    'no-profile': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
  },
});
const engine = chosenEngine();
function chosenEngine(): Engine {
  const chosen: Engine | undefined = ENGINES[positionals[0] as Engine['name']];
  if (chosen && positionals.length === 1) return chosen;
  process.stderr.write(`usage: tsx bench/database.ts ${Object.keys(ENGINES).join('|')} [options]\n`);
  process.exit(2);
}
const targetBytes = Math.round(Number(values['size-gib']) * 1024 ** 3);
const repeat = Math.max(1, Number(values.repeat));
const args = process.argv.slice(3);
const commandLine = `npm run bench:${engine.name}${args.length ? ` -- ${args.join(' ')}` : ''}`;
/** The issue's target: backup and restore within 1.05× of the floor's wall time. */
const TARGET_RATIO = 1.05;
const DB = 'bench';
const KEY = 'tidemark-bench-passphrase';
const MiB = 1024 ** 2;

const log = (message: string) => process.stdout.write(`bench:${engine.name}: ${message}\n`);
const started = Date.now();
const loadAtStart = loadavg();
const work = makeWorkDir(`bench-${engine.name}`);
const logFile = join(work.path, 'bench.log');
let server: BenchServer | undefined;
let cleaned = false;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await server?.stop().catch(() => undefined);
  if (values.keep) log(`kept ${work.path}`);
  else work.remove();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

interface Step {
  operation: 'backup' | 'incremental' | 'restore' | 'dump only' | 'read only' | 'start-up';
  tool: string;
  m: Measurement;
  /** CPU the database server (PostgreSQL's postmaster and backends, mariadbd) spent during the step. */
  serverCpuS: number;
  sizeBytes?: number;
  sizeNote?: string;
}

async function main(): Promise<void> {
  if ((loadAtStart[0] ?? 0) > 0.5)
    log(`WARNING: load average ${loadAtStart[0]?.toFixed(1)} at start: other processes add noise (see "others' CPU")`);
  await buildTidemark(logFile, log);
  const main = join(repoRoot, 'dist', 'cli', 'main.js');

  log(`starting ${engine.title}`);
  const db = await engine.start(work.path, logFile);
  server = db;
  const zstd = systemTool('zstd', 'zstd');
  const zstdVersion = (await runCommand(zstd, ['--version'], { logFile })).trim();
  await db.createDatabase(DB);
  log(`filling database "${DB}" to about ${(targetBytes / MiB).toFixed(0)} MiB`);
  const database = await db.populate(DB, targetBytes, values.scale ? Number(values.scale) : undefined);
  log(`database "${DB}": ${database.description}`);
  const expectedRows = await db.rows(DB);

  const step = async (
    operation: Step['operation'],
    tool: string,
    cmd: Command,
    size?: () => Promise<{ bytes: number; note?: string }>,
  ): Promise<Step> => {
    await db.settle();
    const before = db.cpuSeconds();
    const m = await measure(cmd, logFile, work.path);
    await sleep(300); // PostgreSQL's postmaster reaps the step's backends (their CPU moves to its cutime)
    const serverCpu = db.cpuSeconds() - before;
    const s = size ? await size() : undefined;
    log(
      `${operation.padEnd(11)} ${tool.padEnd(26)} ${m.wallS.toFixed(1).padStart(6)} s wall, ${(m.userS + m.sysS).toFixed(1).padStart(6)} s CPU, server ${serverCpu.toFixed(1)} s, ${m.maxRssMiB.toFixed(0).padStart(5)} MiB RSS, others ${Math.max(0, m.otherCpuS - serverCpu).toFixed(1)} s${s ? `, ${(s.bytes / MiB).toFixed(1)} MiB` : ''}`,
    );
    return {
      operation,
      tool,
      m,
      serverCpuS: serverCpu,
      ...(s ? { sizeBytes: s.bytes, ...(s.note ? { sizeNote: s.note } : {}) } : {}),
    };
  };
  const shell = (script: string): Command => ({
    command: 'bash',
    args: ['-c', `set -euo pipefail; ${script}`],
    env: { ...db.clientEnv, TIDEMARK_REPO_KEY: KEY },
  });
  const tidemark = (...a: string[]): Command => ({
    command: process.execPath,
    args: [...NODE_RUNTIME_FLAGS, main, ...a],
    env: { ...db.tidemarkEnv, TIDEMARK_REPO_KEY: KEY },
  });
  const url = (name: string) => db.url(name);
  const dumpTool = engine.dumpTool;
  const loadTool = engine.loadTool;
  const fileSize = (path: string) => async () => ({ bytes: (await stat(path)).size });

  const steps: Step[] = [];
  const plainBytesFile = join(work.path, 'plain-bytes');
  const dump1 = join(work.path, 'dump.sql.zst1');
  const dump3 = join(work.path, 'dump.sql.zst');
  let repo = '';
  for (let r = 1; r <= repeat; r++) {
    log(`backups, round ${r} of ${repeat}`);
    repo = join(work.path, `repo-${r}`);
    await rm(repo, { recursive: true, force: true });
    await run(tidemark('repo', 'init', '--repo', `file://${repo}`), logFile);
    const floor = async () => {
      steps.push(
        await step(
          'dump only',
          `${dumpTool} | wc -c`,
          shell(`${db.dump(DB)} | wc -c > ${q(plainBytesFile)}`),
          async () => ({
            bytes: Number((await readFile(plainBytesFile, 'utf8')).trim()),
            note: 'plain SQL',
          }),
        ),
      );
      for (const [level, file] of [
        [1, dump1],
        [3, dump3],
      ] as const)
        steps.push(
          await step(
            'backup',
            `${dumpTool} | zstd -${level} > file`,
            shell(`${db.dump(DB)} | ${zstd} -${level} -q > ${q(file)}`),
            fileSize(file),
          ),
        );
    };
    const ours = async () => {
      const repoArgs = ['--repo', `file://${repo}`];
      // The fixed cost of every command: Node start, loading the CLI, opening the repository (key derivation).
      steps.push(await step('start-up', 'tidemark repo snapshots', tidemark('repo', 'snapshots', ...repoArgs)));
      steps.push(
        await step(
          'backup',
          'tidemark backup (full)',
          tidemark('backup', '--source', url(DB), ...repoArgs, '--type', 'full'),
          async () => ({ bytes: await diskBytes(repo), note: 'repository' }),
        ),
      );
      steps.push(
        await step(
          'incremental',
          'tidemark backup (incremental)',
          tidemark('backup', '--source', url(DB), ...repoArgs, '--type', 'incremental'),
          async () => ({ bytes: await diskBytes(repo), note: 'repository, both snapshots' }),
        ),
      );
    };
    // The order alternates between rounds, so a drift in background load favours neither side.
    if (r % 2 === 1) {
      await floor();
      await ours();
    } else {
      await ours();
      await floor();
    }
  }
  await rm(dump1, { force: true });

  for (let r = 1; r <= repeat; r++) {
    log(`restores, round ${r} of ${repeat}`);
    /** Runs a restore step into database `db` (created first unless Tidemark creates it), checks it, drops it. */
    const restoreInto = async (name: string, tool: string, cmd: Command, create: boolean) => {
      if (create) await db.createDatabase(name);
      steps.push(await step('restore', tool, cmd));
      const rows = await db.rows(name);
      if (rows !== expectedRows) throw new Error(`${tool}: ${rows} rows, expected ${expectedRows}`);
      await db.dropDatabase(name);
    };
    const repoStream = `${process.execPath} ${NODE_RUNTIME_FLAGS.join(' ')} ${q(main)} repo restore --snapshot latest --target - --repo ${q(`file://${repo}`)}`;
    const floor = () =>
      restoreInto(
        `restore_floor_${r}`,
        `zstd -dc file | ${loadTool}`,
        shell(`${zstd} -dc ${q(dump3)} | ${db.load(`restore_floor_${r}`)}`),
        true,
      );
    const ours = () =>
      restoreInto(
        `restore_tidemark_${r}`,
        'tidemark restore',
        tidemark(
          'restore',
          '--snapshot',
          'latest',
          '--target',
          url(`restore_tidemark_${r}`),
          '--repo',
          `file://${repo}`,
        ),
        false,
      );
    // Where the difference comes from: the repository read alone, and the repository read piped into a
    // plain client (no scratch database, no row counts).
    const parts = async () => {
      steps.push(
        await step('read only', 'tidemark repo restore --target - | wc -c', shell(`${repoStream} | wc -c > /dev/null`)),
      );
      await restoreInto(
        `restore_stream_${r}`,
        `tidemark repo restore --target - | ${loadTool}`,
        shell(`${repoStream} | ${db.load(`restore_stream_${r}`)}`),
        true,
      );
    };
    if (r % 2 === 1) {
      await floor();
      await ours();
    } else {
      await ours();
      await floor();
    }
    await parts();
  }

  const profiles: { operation: string; summary: ProfileSummary; m: Measurement }[] = [];
  if (!values['no-profile']) {
    const profRepo = join(work.path, 'repo-profile');
    await run(tidemark('repo', 'init', '--repo', `file://${profRepo}`), logFile);
    const profiled = async (operation: string, cmd: Command) => {
      const dir = join(work.path, `cpuprof-${operation}`);
      await mkdir(dir, { recursive: true });
      await db.settle();
      const m = await measure(
        { ...cmd, args: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...cmd.args] },
        logFile,
        work.path,
      );
      const summary = await summarizeProfile(dir, 10);
      log(`profiled ${operation}: ${m.wallS.toFixed(1)} s, main thread busy ${(summary.busyMs / 1000).toFixed(1)} s`);
      profiles.push({ operation, summary, m });
    };
    await profiled('backup', tidemark('backup', '--source', url(DB), '--repo', `file://${profRepo}`));
    await profiled(
      'restore',
      tidemark('restore', '--snapshot', 'latest', '--target', url('restore_profile'), '--repo', `file://${profRepo}`),
    );
    await db.dropDatabase('restore_profile');
  }

  const section = render({
    serverVersion: db.version,
    serverSetup: db.setup,
    sourceUrl: db.url(DB).replace(/:\d+\//, ':PORT/'),
    database: database.description,
    zstdVersion,
    expectedRows,
    steps,
    profiles,
    filesystem:
      (await run({ command: 'df', args: ['--output=fstype,source', work.path] }, logFile))
        .trim()
        .split('\n')
        .at(-1)
        ?.trim()
        .replace(/\s+/, ' on ') ?? 'unknown',
    tidemarkVersion: await tidemarkVersion(),
  });
  await writeSections(values.out as string, { [engine.name]: section });
  log(`wrote the ${engine.name} section of ${values.out} in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
}

async function tidemarkVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const rev = await run({ command: 'git', args: ['-C', repoRoot, 'describe', '--always', '--dirty'] }, logFile);
  return `${pkg.version} (${rev.trim()}, Node ${process.version})`;
}

interface ReportInput {
  serverVersion: string;
  serverSetup: string;
  sourceUrl: string;
  database: string;
  zstdVersion: string;
  expectedRows: string;
  steps: Step[];
  profiles: { operation: string; summary: ProfileSummary; m: Measurement }[];
  filesystem: string;
  tidemarkVersion: string;
}

function render(input: ReportInput): string {
  const { steps } = input;
  const cpu = (m: Measurement) => m.userS + m.sysS;
  // The fastest of the repetitions of each (operation, tool).
  const best = new Map<string, { s: Step; all: number[] }>();
  for (const s of steps) {
    const key = `${s.operation}\0${s.tool}`;
    const seen = best.get(key);
    if (!seen) best.set(key, { s, all: [s.m.wallS] });
    else {
      seen.all.push(s.m.wallS);
      if (s.m.wallS < seen.s.m.wallS) seen.s = s;
    }
  }
  const get = (operation: Step['operation'], tool: string) => best.get(`${operation}\0${tool}`)?.s;
  const floorBackup = get('backup', `${engine.dumpTool} | zstd -3 > file`);
  const oursBackup = get('backup', 'tidemark backup (full)');
  const oursIncr = get('incremental', 'tidemark backup (incremental)');
  const floorRestore = get('restore', `zstd -dc file | ${engine.loadTool}`);
  const oursRestore = get('restore', 'tidemark restore');
  const ratio = (a?: Step, b?: Step) => (a && b ? a.m.wallS / b.m.wallS : Number.NaN);
  const backupRatio = ratio(oursBackup, floorBackup);
  const incrRatio = ratio(oursIncr, floorBackup);
  const restoreRatio = ratio(oursRestore, floorRestore);
  const verdict = (r: number) =>
    Number.isNaN(r)
      ? 'not measured'
      : r <= TARGET_RATIO
        ? `**meets** the ${TARGET_RATIO}× target`
        : `**misses** the ${TARGET_RATIO}× target`;
  const f1 = (n: number) => n.toFixed(1);
  const f2 = (n: number) => n.toFixed(2);

  const rows = [...best.values()].map(({ s, all }) => {
    const floorOf =
      s.operation === 'restore'
        ? floorRestore
        : s.operation === 'backup' || s.operation === 'incremental'
          ? floorBackup
          : undefined;
    const vs = floorOf ? `${f2(s.m.wallS / floorOf.m.wallS)}×` : '';
    const size = s.sizeBytes !== undefined ? `${f1(s.sizeBytes / MiB)} MiB${s.sizeNote ? ` (${s.sizeNote})` : ''}` : '';
    const others = Math.max(0, s.m.otherCpuS - s.serverCpuS);
    return `| ${s.operation} | ${s.tool.replaceAll('|', '\\|')} | ${f1(s.m.wallS)} | ${all.map(f1).join(', ')} | ${vs} | ${f1(cpu(s.m))} (${f1(s.m.userS)} + ${f1(s.m.sysS)}) | ${f1(s.serverCpuS)} | ${s.m.maxRssMiB.toFixed(0)} | ${size} | ${f1(others)} |`;
  });

  const dumpOnly = get('dump only', `${engine.dumpTool} | wc -c`);
  const zstd1 = get('backup', `${engine.dumpTool} | zstd -1 > file`);
  const plainBytes = dumpOnly?.sizeBytes;
  const lines: string[] = [];
  lines.push(
    `## ${engine.title}: Tidemark against \`${engine.dumpTool} | zstd\` and \`${engine.loadTool}\``,
    '',
    `<!-- Generated by bench/database.ts; do not edit by hand: rerun \`npm run bench:${engine.name}\` instead. -->`,
    '',
    `Produced by \`${commandLine}\` on ${new Date(started).toISOString().replace(/\.\d+Z$/, 'Z')} (the run took ${f1((Date.now() - started) / 60_000)} min).`,
    '',
    `- Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores (nproc), memory ${f1(totalmem() / 1024 ** 3)} GiB, Linux ${release()}; temporary directory on ${input.filesystem}. Load average at the start: ${loadAtStart.map(f2).join(' / ')} (1 / 5 / 15 min)${(loadAtStart[0] ?? 0) > 0.5 ? ' — other work was running on the machine; its CPU during each step is the last column' : ''}.`,
    `- Server: ${input.serverVersion}, ${input.serverSetup}.`,
    `- Database: ${input.database}${plainBytes ? `, ${f1(plainBytes / MiB)} MiB as plain SQL` : ''} (accounts/branches rows: ${input.expectedRows}).`,
    `- Tools: tidemark ${input.tidemarkVersion}, compiled (dist/), file:// repository, AES-256-GCM, default compression (zstd level 1); ${input.zstdVersion.replace(/^\*+\s*|\s*\*+$/g, '')} (default single thread).`,
    '',
    '### Method',
    '',
    `- All steps in one run, against the same server and database. Each step ran ${repeat}× (the order of floor and Tidemark alternating between rounds); the table keeps the fastest (all wall times listed). Before every step: ${engine.settleNote} and \`sync\`, so no step pays for the writes of the one before.`,
    `- Floor backup: \`${engine.dumpTool} bench | zstd -3 > file\` in bash with pipefail; \`| zstd -1\` and \`| wc -c\` (${engine.dumpTool} alone, nothing stored) show where the time goes. Tidemark backup: \`${NODE_COMMAND} dist/cli/main.js backup --source ${input.sourceUrl} --repo file:///… --type full\` into a fresh repository, then \`--type incremental\` of the unchanged database into the same one. \`tidemark repo snapshots\` (start Node, load the CLI, open the repository and derive its key, list) shows the fixed cost of every command. ${engine.dumpNote}`,
    `- Floor restore: \`zstd -dc file | ${engine.loadTool}\` into a database created beforehand (not timed). Tidemark restore: \`restore --snapshot latest --target …/NEWDB\`. ${engine.restoreNote} To see where a difference comes from, each round also streams the snapshot out of the repository alone (\`${NODE_COMMAND} dist/cli/main.js repo restore --snapshot latest --target - | wc -c\`) and pipes that stream into \`${engine.loadTool}\` (the repository engine without the scratch database, row counts and swap). Every restore is checked afterwards (row counts) and dropped.`,
    `- Wall time around the process; CPU (user + system) and peak RSS of the command and its descendants (${engine.dumpTool}, zstd, ${engine.loadTool}) from GNU time; peak RSS is the largest single process's. Server CPU: the server's CPU during the step (/proc), not included in CPU s. Others' CPU: the rest of the machine's busy time during the step (noise from other work). Size: the file written, or \`du -sb\` of the repository.`,
    '',
    '### Results',
    '',
    "| operation | tool | wall s | all runs, s | vs floor | CPU s (user + sys) | server CPU s | peak RSS MiB | size | others' CPU s |",
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |',
    ...rows,
    '',
    `### Against the target (within ${TARGET_RATIO}× of the floor)`,
    '',
    `- Backup: Tidemark ${oursBackup ? f1(oursBackup.m.wallS) : '?'} s vs \`${engine.dumpTool} | zstd -3\` ${floorBackup ? f1(floorBackup.m.wallS) : '?'} s: **${f2(backupRatio)}×**, ${verdict(backupRatio)}.${zstd1 ? ` (Against \`zstd -1\`, ${f1(zstd1.m.wallS)} s: ${f2(ratio(oursBackup, zstd1))}×; ${engine.dumpTool} alone takes ${dumpOnly ? f1(dumpOnly.m.wallS) : '?'} s.)` : ''}`,
    `- CPU per backup, client processes + server: Tidemark ${oursBackup ? f1(cpu(oursBackup.m) + oursBackup.serverCpuS) : '?'} s, floor ${floorBackup ? f1(cpu(floorBackup.m) + floorBackup.serverCpuS) : '?'} s (${oursBackup && floorBackup ? f2((cpu(oursBackup.m) + oursBackup.serverCpuS) / (cpu(floorBackup.m) + floorBackup.serverCpuS)) : '?'}×); others' work took on average ${oursBackup ? f1(Math.max(0, oursBackup.m.otherCpuS - oursBackup.serverCpuS) / oursBackup.m.wallS) : '?'} of the ${availableParallelism()} cores during Tidemark's backup and ${floorBackup ? f1(Math.max(0, floorBackup.m.otherCpuS - floorBackup.serverCpuS) / floorBackup.m.wallS) : '?'} during the floor's, so the step that needs more CPU loses more to contention.`,
    `- Incremental backup of the unchanged database: ${oursIncr ? f1(oursIncr.m.wallS) : '?'} s, ${f2(incrRatio)}× the floor's full dump (for information: ${engine.dumpTool} reads everything every time; only the upload shrinks).`,
    `- Restore: Tidemark ${oursRestore ? f1(oursRestore.m.wallS) : '?'} s vs \`zstd -dc | ${engine.loadTool}\` ${floorRestore ? f1(floorRestore.m.wallS) : '?'} s: **${f2(restoreRatio)}×**, ${verdict(restoreRatio)}. Others' work took on average ${oursRestore ? f1(Math.max(0, oursRestore.m.otherCpuS - oursRestore.serverCpuS) / oursRestore.m.wallS) : '?'} of the ${availableParallelism()} cores during Tidemark's restore and ${floorRestore ? f1(Math.max(0, floorRestore.m.otherCpuS - floorRestore.serverCpuS) / floorRestore.m.wallS) : '?'} during the floor's.`,
    `- Stored: repository ${oursBackup?.sizeBytes !== undefined ? f1(oursBackup.sizeBytes / MiB) : '?'} MiB after the full backup, ${oursIncr?.sizeBytes !== undefined ? f1(oursIncr.sizeBytes / MiB) : '?'} MiB after the incremental, against ${floorBackup?.sizeBytes !== undefined ? f1(floorBackup.sizeBytes / MiB) : '?'} MiB for the zstd -3 file (${zstd1?.sizeBytes !== undefined ? f1(zstd1.sizeBytes / MiB) : '?'} MiB with -1).`,
  );
  if (input.profiles.length) {
    lines.push(
      '',
      '### Where Tidemark spends its time',
      '',
      `One more backup (into a fresh repository) and restore under \`node --cpu-prof\`. The profile samples Node's main thread only: compression and encryption on libuv's thread pool, ${engine.dumpTool}, ${engine.loadTool} and the server do not appear in it, so each run also gives the process tree's CPU and the server's.`,
    );
    for (const p of input.profiles) {
      lines.push(
        '',
        `**${p.operation}**: ${f1(p.m.wallS)} s wall (profiling included), ${f1(cpu(p.m))} s CPU in node and its children; main thread busy ${f1(p.summary.busyMs / 1000)} s (${f1((p.summary.busyMs / p.summary.totalMs) * 100)}% of the sampled time). Top functions by self time (share of the busy time):`,
        '',
        '| function | self ms | share |',
        '| --- | ---: | ---: |',
        ...p.summary.hotspots.map(
          (h) => `| \`${h.name.replaceAll('|', '\\|')}\` | ${h.selfMs.toFixed(0)} | ${(h.share * 100).toFixed(1)}% |`,
        ),
      );
    }
  }
  return lines.join('\n');
}

try {
  await main();
} catch (error) {
  process.stderr.write(
    `bench:${engine.name}: ${(error as Error).message}\n(the log of every command: ${logFile}; use --keep to keep it)\n`,
  );
  process.exitCode = 1;
} finally {
  await cleanUp();
}
