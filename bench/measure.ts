// Runs one command under GNU time and returns what it cost: wall time (measured here), user and
// system CPU time and peak resident set size (the largest of the command and its descendants, as
// getrusage(RUSAGE_CHILDREN) reports it through /usr/bin/time).
import { spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runCommand } from '../test/harness/process.ts';
import { repoRoot, systemTool } from '../test/harness/tools.ts';

export interface Command {
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export interface Measurement {
  wallS: number;
  userS: number;
  sysS: number;
  maxRssMiB: number;
  /** CPU time the whole machine spent outside this command while it ran (other processes: noise). */
  otherCpuS: number;
}

/** CPU seconds the machine has been busy (all cores, /proc/stat; idle and iowait excluded). */
async function machineBusyS(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / 100; // USER_HZ
}

const TIME_FORMAT = '%U %S %M';

/** Runs `cmd` to completion with its output appended to `logFile`; throws (naming the log) unless it exits 0. */
export async function measure(cmd: Command, logFile: string, scratchDir: string): Promise<Measurement> {
  const time = systemTool('time', 'time');
  const timeFile = join(scratchDir, `time-${process.pid}-${Date.now()}.txt`);
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n$ ${cmd.command} ${cmd.args.join(' ')}\n`);
  const busyBefore = await machineBusyS();
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(time, ['-f', TIME_FORMAT, '-o', timeFile, cmd.command, ...cmd.args], {
      cwd: cmd.cwd,
      env: { ...process.env, ...cmd.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('error', reject);
    child.once('close', (exit) => resolve(exit));
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const busyS = (await machineBusyS()) - busyBefore;
  await new Promise((resolve) => log.end(resolve));
  if (code !== 0) {
    const tail = (await readFile(logFile, 'utf8')).trim().split('\n').slice(-5).join('\n  ');
    throw new Error(`${basename(cmd.command)} ${cmd.args[0] ?? ''} exited with ${code}; see ${logFile}:\n  ${tail}`);
  }
  const fields = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)?.split(/\s+/).map(Number) ?? [];
  await rm(timeFile, { force: true });
  const [userS, sysS, maxRssKiB] = fields;
  if (userS === undefined || sysS === undefined || maxRssKiB === undefined || fields.some(Number.isNaN))
    throw new Error(`cannot read GNU time's output for ${cmd.command}`);
  return { wallS, userS, sysS, maxRssMiB: maxRssKiB / 1024, otherCpuS: Math.max(0, busyS - userS - sysS) };
}

/** Runs a setup command that is not measured (init, listing snapshots); returns its stdout. */
export function run(cmd: Command, logFile: string): Promise<string> {
  appendFileSync(logFile, `\n$ ${cmd.command} ${cmd.args.join(' ')}\n`);
  return runCommand(cmd.command, cmd.args, {
    logFile,
    env: { ...process.env, ...cmd.env },
    ...(cmd.cwd ? { cwd: cmd.cwd } : {}),
  });
}

/** Bytes on disk as `du -sb` counts them (apparent sizes of files and directories). */
export async function diskBytes(path: string): Promise<number> {
  const out = await runCommand(systemTool('du', 'coreutils'), ['-sb', path], { logFile: '/dev/null' });
  return Number(out.split(/\s+/)[0]);
}

/**
 * Compiles Tidemark into dist/ as the image runs it. tsc still emits on type errors (work in progress
 * elsewhere): then what was emitted is measured, loudly.
 */
export async function buildTidemark(logFile: string, log: (line: string) => void): Promise<void> {
  log('building Tidemark (tsc -p tsconfig.build.json)');
  await runCommand(join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', join(repoRoot, 'tsconfig.build.json')], {
    logFile,
    cwd: repoRoot,
  }).catch((error: unknown) => {
    if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) throw error;
    log(`WARNING: tsc reported errors, benchmarking the emitted dist/ anyway: ${(error as Error).message}`);
  });
}
