// Compiles the operator as the image ships it (tsc -p tsconfig.build.json; the Dockerfile runs
// `node dist/cli/main.js`) into .work/bench-operator/, not dist/, which `npm run bench` rebuilds meanwhile.
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../test/harness/process.ts';
import { repoRoot } from '../../test/harness/tools.ts';

/** Builds and returns the path of the compiled `tidemark` entry point. */
export async function buildOperator(logFile: string, warn: (message: string) => void): Promise<string> {
  const dir = join(repoRoot, '.work', 'bench-operator');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // dist/version.js reads ../package.json; packages resolve upwards to the repository's node_modules.
  symlinkSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  const main = join(dir, 'dist', 'cli', 'main.js');
  const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
  await runCommand(tsc, ['-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], {
    logFile,
    cwd: repoRoot,
  }).catch((error: unknown) => {
    // tsc still emits on type errors (work in progress elsewhere); measure what was emitted, loudly.
    if (!existsSync(main)) throw error;
    warn(`tsc reported errors, benchmarking the emitted JavaScript anyway: ${(error as Error).message}`);
  });
  return main;
}
