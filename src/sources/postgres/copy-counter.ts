import type { ObjectCount } from '../source.ts';

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const DASH = 0x2d;
// Longest COPY line possible: 1600 columns of 63-byte identifiers, each quoted with every byte a quote.
const MAX_TEXT_LINE = 1 << 20;
const DATA_HEADER = '-- Data for Name: ';
const DATA_TYPE = '; Type: TABLE DATA;';

/**
 * Counts the rows of each table in a plain-format pg_dump stream as it flows, so the counts come from
 * the dump's own snapshot. A table's rows are the lines between `COPY schema.table (...) FROM stdin;`
 * and a line holding only `\.`; in COPY text format, newlines and backslashes inside values are
 * escaped, so one line is one row. A COPY line counts only right after pg_dump's "TABLE DATA" header
 * comment, so `COPY ... FROM stdin;` inside a function body is never mistaken for data.
 */
export class CopyCounter {
  private readonly counts = new Map<string, number>();
  private readonly problems: string[] = [];
  private table: string | undefined;
  private rows = 0;
  private afterDataHeader = false;
  /** The start of the current line when it began in an earlier chunk (only as much as is needed). */
  private head: Buffer[] = [];
  private headBytes = 0;
  private lineBytes = 0;

  write(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      if (newline === -1 || this.lineBytes > 0) this.keep(chunk.subarray(start, end));
      if (newline === -1) return;
      if (this.lineBytes > 0) {
        this.line(Buffer.concat(this.head), this.lineBytes);
        this.head = [];
        this.headBytes = 0;
        this.lineBytes = 0;
      } else if (this.table !== undefined) {
        this.row(chunk, start, end - start); // millions of rows: no view allocated per line
      } else {
        this.line(chunk.subarray(start, end), end - start);
      }
      start = newline + 1;
    }
  }

  /** Call at the end of the stream. */
  end(): void {
    if (this.lineBytes > 0) this.line(Buffer.concat(this.head), this.lineBytes);
    this.head = [];
    this.lineBytes = 0;
    if (this.table !== undefined) this.problems.push(`the dump ended inside the data of ${this.table}`);
    this.table = undefined;
  }

  /** Rows per table (`schema.table`), in dump order. */
  objects(): ObjectCount[] {
    return [...this.counts].map(([name, records]) => ({ name, records }));
  }

  /** What could not be counted (never expected from pg_dump's own output). */
  issues(): string[] {
    return [...this.problems];
  }

  private keep(part: Buffer): void {
    this.lineBytes += part.length;
    const limit = this.table === undefined ? MAX_TEXT_LINE : 3; // 3 bytes tell `\.` from a longer row
    if (this.headBytes >= limit || part.length === 0) return;
    const kept = part.subarray(0, limit - this.headBytes);
    this.head.push(Buffer.from(kept)); // a copy: the chunk may be reused by its producer
    this.headBytes += kept.length;
  }

  /** A line of the current table's data at `bytes[at]`: a row, or `\.` that ends the data. */
  private row(bytes: Buffer, at: number, length: number): void {
    if (length === 2 && bytes[at] === BACKSLASH && bytes[at + 1] === DOT) {
      this.counts.set(this.table as string, this.rows);
      this.table = undefined;
    } else {
      this.rows++;
    }
  }

  /** One complete line, without its newline; `head` holds at least its first bytes. */
  private line(head: Buffer, length: number): void {
    if (this.table !== undefined) {
      this.row(head, 0, length);
      return;
    }
    if (length > MAX_TEXT_LINE) {
      this.afterDataHeader = false;
      return;
    }
    if (!this.afterDataHeader && head[0] !== DASH) return;
    const text = head.toString('utf8');
    if (this.afterDataHeader) {
      if (text.startsWith('COPY ')) {
        this.afterDataHeader = false;
        const table = parseCopyTarget(text);
        if (table === undefined) this.problems.push(`cannot read the table of: ${text.slice(0, 200)}`);
        else {
          this.table = table;
          this.rows = 0;
        }
      } else if (text !== '' && !text.startsWith('--')) {
        this.afterDataHeader = false;
      }
    } else if (text.startsWith(DATA_HEADER) && text.includes(DATA_TYPE)) {
      this.afterDataHeader = true;
    }
  }
}

/** `schema.table` from `COPY schema.table (a, b) FROM stdin;`, identifiers unquoted. */
export function parseCopyTarget(line: string): string | undefined {
  if (!line.startsWith('COPY ') || !line.endsWith(' FROM stdin;')) return undefined;
  const parts: string[] = [];
  let at = 'COPY '.length;
  for (;;) {
    const identifier = readIdentifier(line, at);
    if (!identifier) return undefined;
    parts.push(identifier.name);
    at = identifier.end;
    if (line[at] !== '.') break;
    at++;
  }
  if (parts.length > 2 || line[at] !== ' ') return undefined;
  return parts.join('.');
}

function readIdentifier(line: string, start: number): { name: string; end: number } | undefined {
  if (line[start] !== '"') {
    let end = start;
    while (end < line.length && !' .("'.includes(line[end] as string)) end++;
    return end > start ? { name: line.slice(start, end), end } : undefined;
  }
  let name = '';
  let at = start + 1;
  while (at < line.length) {
    const quote = line.indexOf('"', at);
    if (quote === -1) return undefined;
    name += line.slice(at, quote);
    if (line[quote + 1] === '"') {
      name += '"';
      at = quote + 2;
    } else {
      return { name, end: quote + 1 };
    }
  }
  return undefined;
}
