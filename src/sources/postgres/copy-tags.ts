import type { ObjectCount } from '../source.ts';
import type { CopyBlock } from './copy-counter.ts';

const NEWLINE = 0x0a;
const COPY_TAG = /^COPY (\d+)$/;
// "COPY " and any 64-bit count fit; longer lines are kept only this far, and never match.
const MAX_TAG = 32;

/**
 * The rows each COPY loaded, from the command tags psql prints on stdout when not quiet (`COPY 42`),
 * read line by line as they come; every other line (SET, CREATE TABLE, query results) is ignored.
 */
export class CopyTags {
  readonly counts: number[] = [];
  /** The start of the current line, at most MAX_TAG + 1 characters. */
  private line = '';

  write(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      const room = MAX_TAG + 1 - this.line.length;
      if (room > 0) this.line += chunk.toString('latin1', start, Math.min(end, start + room));
      if (newline === -1) return;
      this.tag();
      start = newline + 1;
    }
  }

  /** Call at the end of the output. */
  end(): void {
    this.tag();
  }

  private tag(): void {
    const match = this.line.length <= MAX_TAG ? COPY_TAG.exec(this.line) : null;
    if (match) this.counts.push(Number(match[1]));
    this.line = '';
  }
}

/**
 * Pairs the COPY blocks of a dump (in stream order) with the tags of the COPY commands psql ran for
 * them, in the same order: the rows loaded per table (a table in several blocks is summed; a block
 * whose table could not be read is left out). Different numbers mean some COPY was not seen on one
 * side: then no count can be trusted, and none is given; the reason is, for the restore to report.
 * Never a failure: the counts check a restore, and PostgreSQL loaded the dump.
 */
export function pairCopyTags(blocks: CopyBlock[], tags: number[]): { objects: ObjectCount[]; problem?: string } {
  if (tags.length !== blocks.length)
    return {
      objects: [],
      problem: `psql ran ${tags.length} COPY commands but the dump reader found ${blocks.length} COPY blocks, so the restored row counts cannot be told`,
    };
  const counts = new Map<string, number>();
  blocks.forEach(({ table }, i) => {
    if (table !== undefined) counts.set(table, (counts.get(table) ?? 0) + (tags[i] as number));
  });
  return { objects: [...counts].map(([name, records]) => ({ name, records })) };
}
