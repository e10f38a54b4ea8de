import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * Replaces what lies between `<!-- name:start -->` and `<!-- name:end -->` in `path` for every section given
 * (appending the markers when absent): each bench writes only its own sections of BENCHMARKS.md.
 */
export async function writeSections(path: string, sections: Record<string, string>): Promise<void> {
  let text = existsSync(path) ? await readFile(path, 'utf8') : '';
  for (const [name, section] of Object.entries(sections)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end, from);
    const block = `${start}\n${section.trim()}\n${end}`;
    text =
      from >= 0 && to > from
        ? text.slice(0, from) + block + text.slice(to + end.length)
        : `${text}${text === '' || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n'}${block}\n`;
  }
  await writeFile(path, text);
}
