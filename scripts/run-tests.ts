// Runs the test suites with Node's own test runner: `unit` (src/ and test/harness/, no servers),
// `integration` (test/integration/, real control plane and services), `operator` (test/operator/, the
// operator end to end), or all three when no suite is named.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { failureReportDir, repoRoot } from '../test/harness/tools.ts';

const suites: Record<string, string[]> = {
  unit: ['src', 'test/harness'],
  integration: ['test/integration'],
  // The operator end to end (control plane, process kubelet, agent Jobs, databases, object stores).
  operator: ['test/operator'],
};

function testFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.ts'))
    .map((entry) => relative(repoRoot, join(entry.parentPath, entry.name)))
    .sort();
}

const requested = process.argv.slice(2);
const unknown = requested.filter((s) => !(s in suites));
if (unknown.length) {
  console.error(`unknown suite ${unknown.join(', ')}; choose from ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
const files = (requested.length ? requested : ['unit', 'integration', 'operator'])
  .flatMap((s) => suites[s] ?? [])
  .flatMap(testFiles);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// A test that hangs fails after 10 minutes (the longest takes ~2) instead of holding CI until its limit: the
// servers a test file starts keep its event loop alive, so a hang would otherwise never end on its own.
const testTimeout = '--test-timeout=600000';
takeFailureReports(); // a report left by an earlier run is not this run's
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', testTimeout, '--test-reporter=spec', '--test-reporter-destination=stdout', ...files],
  {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
);
// What the environments of failed tests said (test/harness/failure-report.ts), last, where a CI log's tail shows it.
const reports = takeFailureReports();
if (reports.length) console.log(['', '✖ what the environments of the failed tests said:', ...reports].join('\n'));
process.exit(result.status ?? 1);

/** The reports failed tests left (test/harness/failure-report.ts), oldest first; taking them removes them. */
function takeFailureReports(): string[] {
  let files: string[] = [];
  try {
    files = readdirSync(failureReportDir).sort();
  } catch {
    // none
  }
  const reports = files.map((f) => readFileSync(join(failureReportDir, f), 'utf8'));
  rmSync(failureReportDir, { recursive: true, force: true });
  return reports;
}
