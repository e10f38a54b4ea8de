import { Writable } from 'node:stream';
import { TidemarkError, withContext } from '../errors.ts';
import { DumpRowCounter } from '../sources/mysql/dump-rows.ts';
import { insertValues } from '../sources/mysql/insert-values.ts';
import { CopyCounter } from '../sources/postgres/copy-counter.ts';
import { copyTextFields } from '../sources/postgres/copy-text.ts';
import type { ObjectCount } from '../sources/source.ts';
import { type CsvField, csvHeader, csvRecord } from './csv.ts';
import type { ZipStream } from './zip-stream.ts';

/** How far into a dump its engine is told (pg_dump's and mariadb-dump's banners come first). */
const SNIFF_BYTES = 8192;

type Engine = 'postgres' | 'mysql';

/** Which tool wrote a dump stream, from its first bytes. */
export function dumpEngine(head: Buffer): Engine | undefined {
  const text = head.toString('utf8');
  if (text.includes('-- PostgreSQL database dump')) return 'postgres';
  if (/-- (MariaDB|MySQL) dump/.test(text)) return 'mysql';
  return undefined;
}

/** A ZIP entry name for a table: `/`, `\`, `%` and control characters percent-encoded, so no name makes a folder. */
export function entryName(database: string, table: string): string {
  const safe = (name: string) =>
    [...name]
      .map((c) => {
        const code = c.charCodeAt(0);
        return c === '/' || c === '\\' || c === '%' || code < 0x20 || code === 0x7f
          ? `%${code.toString(16).padStart(2, '0').toUpperCase()}`
          : c;
      })
      .join('');
  return `${safe(database)}/${safe(table)}.csv`;
}

/**
 * Takes one database's dump stream (as the backup stored it) and writes one CSV entry per table into
 * the ZIP: a header row of the column names, then the rows in dump order. The dump's own lexer finds
 * the rows (copy-counter.ts, dump-rows.ts), so the CSV holds exactly the rows a restore would load.
 * Tables without rows get a CSV with only the header.
 */
export class DumpToCsv extends Writable {
  private head: Buffer[] = [];
  private headBytes = 0;
  private feed: ((chunk: Buffer) => void) | undefined;
  private finishDump: (() => void) | undefined;
  private current: string | undefined;
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly zip: ZipStream,
    private readonly database: string,
    private readonly modified: Date,
  ) {
    super();
  }

  /** Rows per table written, in the order the tables were written. */
  tables(): ObjectCount[] {
    return [...this.counts].map(([name, records]) => ({ name, records }));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.consume(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.consume(undefined).then(() => callback(), callback);
  }

  private async consume(chunk: Buffer | undefined): Promise<void> {
    try {
      if (!this.feed) {
        if (chunk) {
          this.head.push(chunk);
          this.headBytes += chunk.length;
          if (this.headBytes < SNIFF_BYTES) return;
        }
        this.start(Buffer.concat(this.head));
        this.head = [];
        if (!chunk) (this.finishDump as () => void)();
      } else if (chunk) this.feed(chunk);
      else (this.finishDump as () => void)();
      await this.zip.drained();
    } catch (error) {
      throw withContext(`exporting database ${this.database}`, error);
    }
  }

  /** Picks the lexer from the dump's first bytes and feeds them to it. */
  private start(head: Buffer): void {
    const engine = dumpEngine(head);
    if (engine === 'postgres') {
      const lexer = new CopyCounter({
        onRow: (table, columns, line) => this.row(table, columns, copyTextFields(line)),
      });
      this.feed = (chunk) => lexer.write(chunk);
      this.finishDump = () => {
        lexer.end();
        const problems = lexer.issues();
        if (problems.length)
          throw new TidemarkError('Corrupt', `the dump cannot be read whole: ${problems.join('; ')}`);
        for (const block of lexer.blocks()) if (block.table) this.emptyTable(block.table, block.columns ?? []);
        this.zip.close();
      };
    } else if (engine === 'mysql') {
      const lexer = new DumpRowCounter({
        onRow: (table, columns, tuple) => this.row(table, columns, insertValues(tuple)),
      });
      this.feed = (chunk) => lexer.push(chunk);
      this.finishDump = () => {
        lexer.end();
        for (const { table } of lexer.tables()) this.emptyTable(table, lexer.columnsOf(table));
        this.zip.close();
      };
    } else {
      throw new TidemarkError('Unsupported', 'the stream is neither a pg_dump nor a mariadb-dump / mysqldump dump');
    }
    this.feed(head);
  }

  private row(table: string | undefined, columns: string[] | undefined, fields: CsvField[]): void {
    if (table === undefined) throw new TidemarkError('Corrupt', 'rows of a COPY block whose table cannot be read');
    if (table !== this.current) this.openTable(table, columns);
    this.counts.set(table, (this.counts.get(table) ?? 0) + 1);
    this.zip.add(csvRecord(fields));
  }

  private emptyTable(table: string, columns: string[] | undefined): void {
    if (!this.counts.has(table)) this.openTable(table, columns);
  }

  private openTable(table: string, columns: string[] | undefined): void {
    if (this.counts.has(table))
      throw new TidemarkError('Unsupported', `table ${table}: its rows are not together in the dump`);
    if (!columns) throw new TidemarkError('Corrupt', `table ${table}: the dump names no columns for it`);
    this.zip.open(entryName(this.database, table), this.modified);
    this.zip.add(csvHeader(columns));
    this.counts.set(table, 0);
    this.current = table;
  }
}
