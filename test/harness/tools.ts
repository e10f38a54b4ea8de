import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const toolsBin = join(repoRoot, '.tools', 'bin');
/** Where failed tests leave their reports (test/harness/failure-report.ts) for scripts/run-tests.ts to print. */
export const failureReportDir = join(repoRoot, '.work', 'test-failures');

/** Path of a Go tool built by `npm run tools`; a missing tool is an error, never a skip. */
export function goTool(
  name: 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kubectl' | 'versitygw' | 'helm',
): string {
  const path = join(toolsBin, name);
  if (!existsSync(path)) throw new Error(`${name} is not built: run \`npm run tools\` (expected ${path})`);
  return path;
}

/** Finds a system binary in the usual Debian locations; a missing one is an error naming the package. */
export function systemTool(name: string, debianPackage: string, extraDirs: string[] = []): string {
  const dirs = [...extraDirs, ...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const path = join(dir, name);
    if (dir && existsSync(path)) return path;
  }
  throw new Error(`${name} not found: install the Debian package ${debianPackage} (.ci/run does)`);
}
