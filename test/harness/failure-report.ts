// When a test fails, what the servers and processes it started were saying, written where the test runner
// prints it at the end of the run (scripts/run-tests.ts): a CI log shows its tail, and a test's work
// directory is removed with the test. Each environment registers what it can tell; nothing runs on success.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach } from 'node:test';
import { failureReportDir, repoRoot } from './tools.ts';

const LINE_MAX = 220;

type Describe = () => Promise<string[]>;
const sources = new Map<string, Describe>();

/** Adds `describe` to what a failed test reports while it is registered; the returned function removes it. */
export function reportOnFailure(name: string, describe: Describe): () => void {
  sources.set(name, describe);
  return () => sources.delete(name);
}

afterEach(async (t) => {
  if (t.passed || sources.size === 0) return;
  const sections = await Promise.all(
    [...sources].map(async ([name, describe]) => {
      const lines = await describe().catch((error: unknown) => [`(could not tell: ${String(error)})`]);
      return [`-- ${name}`, ...lines.map((l) => `   ${l.length > LINE_MAX ? `${l.slice(0, LINE_MAX)}…` : l}`)];
    }),
  );
  const file = relative(repoRoot, process.argv[1] ?? '');
  mkdirSync(failureReportDir, { recursive: true });
  appendFileSync(
    join(failureReportDir, `${process.pid}.txt`),
    [`## ${file} › ${t.fullName}`, ...sections.flat(), ''].join('\n'),
  );
});

/**
 * The lines of a JSON log worth reading after a failure: its last warnings and errors, then its last lines,
 * each as `time level event: msg` (or the raw line when it is not JSON).
 */
export function logDigest(text: string, warnings = 12, last = 8): string[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const parsed = lines.map((line) => {
    try {
      return { line, entry: JSON.parse(line) as Record<string, unknown> };
    } catch {
      return { line, entry: undefined };
    }
  });
  const show = ({ line, entry }: (typeof parsed)[number]) =>
    entry
      ? `${String(entry.time ?? '').slice(11, 23)} ${Number(entry.level) >= 50 ? 'ERROR' : Number(entry.level) >= 40 ? 'WARN' : 'info'} ${entry.event ?? ''}: ${entry.msg ?? ''}`
      : line;
  const warned = parsed.filter((p) => Number(p.entry?.level) >= 40).slice(-warnings);
  const tail = parsed.slice(-last).filter((p) => !warned.includes(p));
  return [
    ...(warned.length ? ['warnings and errors:', ...warned.map(show)] : ['no warnings or errors']),
    ...(tail.length ? ['last lines:', ...tail.map(show)] : []),
  ];
}
