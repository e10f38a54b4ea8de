import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * Replaces what lies between `<!-- name:start -->` and `<!-- name:end -->` in `path` (appending the
 * markers when absent): each bench writes only its own section of BENCHMARKS.md.
 */
export async function writeSection(path: string, name: string, section: string): Promise<void> {
  const START = `<!-- ${name}:start -->`;
  const END = `<!-- ${name}:end -->`;
  const current = existsSync(path) ? await readFile(path, 'utf8') : '';
  const start = current.indexOf(START);
  const end = current.indexOf(END, start);
  const block = `${START}\n${section.trim()}\n${END}`;
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + block + current.slice(end + END.length)
      : `${current}${current === '' || current.endsWith('\n\n') ? '' : current.endsWith('\n') ? '\n' : '\n\n'}${block}\n`;
  await writeFile(path, next);
}
