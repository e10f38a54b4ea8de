import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, createWriteStream } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A child process started by the harness; its output goes to a log file, never to the test's stdout. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

const running = new Set<ManagedProcess>();

export function startProcess(name: string, command: string, args: string[], options: StartOptions): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so stop() also ends grandchildren
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  // 'close' comes after the last output (unlike 'exit'), so the log is never written after its end.
  child.once('close', () => log.end());
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (error) => {
      log.write(`\n[harness] failed to start ${command}: ${error.message}\n`);
      resolve(null);
    });
  });
  const managed: ManagedProcess = {
    name,
    child,
    logFile: options.logFile,
    exited,
    async stop(signal = 'SIGTERM') {
      running.delete(managed);
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      killGroup(child.pid, signal);
      const done = await Promise.race([exited.then(() => true), sleep(10_000, false, { ref: false })]);
      if (!done) {
        killGroup(child.pid, 'SIGKILL');
        await exited;
      }
    },
  };
  running.add(managed);
  return managed;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Last resort when a test process dies without running its teardown: leave no server behind. */
process.once('exit', () => {
  for (const p of running) if (p.child.pid !== undefined) killGroup(p.child.pid, 'SIGKILL');
});

/** Polls `check` until it returns true; fails with the process log's tail if the process exits first. */
/**
 * Thrown by a `waitUntil` check when what it waits for can no longer happen (a Backup that Failed): `waitUntil`
 * fails with it at once, where any other error of a check means "not ready yet".
 */
export class WaitFailed extends Error {}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exited = false;
  options.process?.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what}: ${options.process?.name} exited early; see ${options.process?.logFile}`);
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof WaitFailed) throw new Error(`${what}: ${error.message}`);
      // not ready yet
    }
    await sleep(options.intervalMs ?? 100);
  }
  throw new Error(
    `${what}: not ready after ${options.timeoutMs} ms${options.process ? `; see ${options.process.logFile}` : ''}`,
  );
}

/**
 * Runs a command to completion and returns its stdout. Output is appended to `logFile`; `input` (which may
 * hold secrets) goes to stdin and is never logged. A failure names the command, stderr's error line and the log.
 */
export function runCommand(
  command: string,
  args: string[],
  options: StartOptions & { input?: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdin.on('error', () => {}); // reported through 'error'/'close' instead
    child.stdin.end(options.input ?? '');
    const fail = (why: string) => {
      const lines = stderr.trim().split('\n');
      const line = lines.find((l) => /error|fatal/i.test(l)) ?? lines.at(-1);
      reject(new Error(`${basename(command)} ${why}${line ? `: ${line.trim()}` : ''}; see ${options.logFile}`));
    };
    child.once('error', (error) => {
      appendFileSync(options.logFile, `[harness] failed to start ${command}: ${error.message}\n`);
      fail(`failed to start (${error.message})`);
    });
    child.once('close', (code, signal) => {
      appendFileSync(options.logFile, `[harness] ${basename(command)} ${args.join(' ')}\n${stdout}${stderr}`);
      if (code === 0) resolve(stdout);
      else fail(`exited with ${code ?? signal}`);
    });
  });
}
