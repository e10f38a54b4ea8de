// How each tool is set up and invoked. Every repository is on local disk (a file backend) under the
// run's temporary directory, encrypted, with the tool's default or recommended compression; caches
// and configuration also live there, so no run sees another's state and nothing is left in $HOME.
//
// Each tool backs up the data set directory so that its contents land at the snapshot root, and
// restores the latest snapshot into an empty directory.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_COMMAND, NODE_RUNTIME_FLAGS } from '../src/cli/runtime-flags.ts';
import { repoRoot, systemTool } from '../test/harness/tools.ts';
import { type Command, run } from './measure.ts';

export type Phase = 'first' | 'incremental';

export interface BenchTool {
  name: string;
  /** Encryption, compression and other settings that matter for the comparison. */
  settings: string;
  /** The repository directory (measured with du). */
  repo: string;
  version(): Promise<string>;
  init(): Promise<void>;
  backup(phase: Phase): Command;
  /** The command restoring the latest snapshot into `target` (an empty directory). */
  restore(target: string): Promise<Command>;
}

export interface ToolContext {
  /** The data set directory. */
  data: string;
  /** This run's temporary directory; each tool gets `workDir/<name>`. */
  workDir: string;
  /** Appended with every command and its output. */
  logFile: string;
}

export const TOOL_NAMES = ['tidemark', 'restic', 'kopia', 'borg'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

const PASSWORD = 'tidemark-bench-passphrase';

/** A Go tool built by scripts/build-bench-tools.sh. */
export function benchTool(name: 'restic' | 'kopia'): string {
  const path = join(repoRoot, '.tools', 'bin', name);
  if (!existsSync(path)) throw new Error(`${name} is not built: run scripts/build-bench-tools.sh`);
  return path;
}

function tidemark(ctx: ToolContext): BenchTool {
  const dir = join(ctx.workDir, 'tidemark');
  const repo = join(dir, 'repo');
  const main = join(repoRoot, 'dist', 'cli', 'main.js');
  const env = { TIDEMARK_REPO_KEY: PASSWORD };
  const cli = (...args: string[]): Command => ({
    command: process.execPath,
    args: [...NODE_RUNTIME_FLAGS, main, 'repo', '--repo', `file://${repo}`, ...args],
    env,
  });
  return {
    name: 'tidemark',
    settings: `file:// backend, AES-256-GCM, default compression (zstd level 1), FastCDC chunks, compiled (dist/), run as the image runs it (\`${NODE_COMMAND}\`)`,
    repo,
    version: async () => {
      const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
      const rev = await run({ command: 'git', args: ['-C', repoRoot, 'describe', '--always', '--dirty'] }, ctx.logFile);
      return `${pkg.version} (${rev.trim()}, Node ${process.version})`;
    },
    init: async () => {
      await mkdir(dir, { recursive: true });
      await run(cli('init'), ctx.logFile);
    },
    backup: (phase) => cli('backup', '--source', ctx.data, '--type', phase === 'first' ? 'full' : 'incremental'),
    restore: async (target) => cli('restore', '--snapshot', 'latest', '--target', target),
  };
}

function restic(ctx: ToolContext): BenchTool {
  const dir = join(ctx.workDir, 'restic');
  const repo = join(dir, 'repo');
  const env = { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(dir, 'cache') };
  const cli = (...args: string[]): Command => ({ command: benchTool('restic'), args: ['-r', repo, ...args], env });
  return {
    name: 'restic',
    settings: 'local backend, repository format 2, AES-256-CTR + Poly1305-AES, `--compression auto` (zstd)',
    repo,
    version: async () => (await run({ command: benchTool('restic'), args: ['version'] }, ctx.logFile)).trim(),
    init: async () => {
      await mkdir(dir, { recursive: true });
      await run(cli('init'), ctx.logFile);
    },
    // `.` from inside the data set puts its contents at the snapshot root; same host and path find the parent.
    backup: () => ({ ...cli('backup', '--compression', 'auto', '--host', 'bench', '--quiet', '.'), cwd: ctx.data }),
    restore: async (target) => cli('restore', 'latest', '--target', target, '--quiet'),
  };
}

export const KOPIA_COMPRESSION = 'zstd';

function kopia(ctx: ToolContext): BenchTool {
  const dir = join(ctx.workDir, 'kopia');
  const repo = join(dir, 'repo');
  const env = { KOPIA_PASSWORD: PASSWORD, KOPIA_CHECK_FOR_UPDATES: 'false' };
  const common = ['--config-file', join(dir, 'repository.config'), '--log-dir', join(dir, 'logs')];
  const cli = (...args: string[]): Command => ({ command: benchTool('kopia'), args: [...args, ...common], env });
  return {
    name: 'kopia',
    settings: `filesystem backend, AES256-GCM-HMAC-SHA256 (default), policy \`--compression=${KOPIA_COMPRESSION}\` (kopia compresses nothing by default; zstd is the level restic's auto uses), default splitter`,
    repo,
    version: async () =>
      (await run({ command: benchTool('kopia'), args: ['--version'] }, ctx.logFile)).trim().replace(/\s*from:\s*$/, ''),
    init: async () => {
      await mkdir(dir, { recursive: true });
      await run(
        cli('repository', 'create', 'filesystem', '--path', repo, '--cache-directory', join(dir, 'cache')),
        ctx.logFile,
      );
      await run(cli('policy', 'set', '--global', `--compression=${KOPIA_COMPRESSION}`), ctx.logFile);
    },
    backup: () => cli('snapshot', 'create', ctx.data, '--no-progress'),
    restore: async (target) => {
      const list = JSON.parse(await run(cli('snapshot', 'list', ctx.data, '--json'), ctx.logFile)) as { id: string }[];
      const latest = list.at(-1);
      if (!latest) throw new Error('kopia lists no snapshot to restore');
      return cli('snapshot', 'restore', latest.id, target);
    },
  };
}

export const BORG_COMPRESSION = 'lz4';

function borg(ctx: ToolContext): BenchTool {
  const dir = join(ctx.workDir, 'borg');
  const repo = join(dir, 'repo');
  const env = { BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: join(dir, 'base') };
  const borgBin = () => systemTool('borg', 'borgbackup');
  return {
    name: 'borg',
    settings: `local repository, \`--encryption repokey\` (AES-256-CTR + HMAC-SHA256), \`--compression ${BORG_COMPRESSION}\` (borg's default), single-threaded`,
    repo,
    version: async () => (await run({ command: borgBin(), args: ['--version'] }, ctx.logFile)).trim(),
    init: async () => {
      await mkdir(dir, { recursive: true });
      await run({ command: borgBin(), args: ['init', '--encryption', 'repokey', repo], env }, ctx.logFile);
    },
    backup: (phase) => ({
      command: borgBin(),
      args: ['create', '--compression', BORG_COMPRESSION, `${repo}::${phase}`, '.'],
      cwd: ctx.data,
      env,
    }),
    restore: async (target) => {
      await mkdir(target, { recursive: true });
      return { command: borgBin(), args: ['extract', `${repo}::incremental`], cwd: target, env };
    },
  };
}

export function makeTools(ctx: ToolContext, names: readonly ToolName[]): BenchTool[] {
  const factories: Record<ToolName, (ctx: ToolContext) => BenchTool> = { tidemark, restic, kopia, borg };
  return names.map((name) => factories[name](ctx));
}
