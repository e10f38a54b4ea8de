// `kubectl tidemark` from the work tree: a `kubectl-tidemark` on a PATH directory, as bin/kubectl-tidemark
// is once built, but running the CLI's plugin commands from source (tests and the demo build nothing).
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goTool, repoRoot } from './tools.ts';

export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Writes `kubectl-tidemark` into `dir` (created); put `dir` on PATH for kubectl to find it. */
export function installKubectlPlugin(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const plugin = join(dir, 'kubectl-tidemark');
  writeFileSync(
    plugin,
    `#!/bin/sh\nexec "${process.execPath}" --import "${import.meta.resolve('tsx')}" "${join(repoRoot, 'src/cli/main.ts')}" kubectl "$@"\n`,
  );
  chmodSync(plugin, 0o755);
  return dir;
}

/** Real `kubectl <args>` with `pluginDir` on PATH, as a shell would run it; never rejects. */
export function kubectlWithPlugins(
  pluginDir: string,
  args: string[],
  env: Record<string, string>,
): Promise<KubectlRun> {
  return new Promise((resolve) => {
    execFile(
      goTool('kubectl'),
      args,
      { env: { ...env, PATH: `${pluginDir}:${process.env.PATH ?? ''}` }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
}
