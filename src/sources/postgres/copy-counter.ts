import type { ObjectCount } from '../source.ts';
import { FieldPicker, fieldPositions, type TablePlans, TableTally, tallyObjects } from '../table-stats.ts';

const NEWLINE = 0x0a;
const TAB = 0x09;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const DOLLAR = 0x24;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const SEMICOLON = 0x3b;
const OPEN_PAREN = 0x28;
const CLOSE_PAREN = 0x29;
// A COPY statement longer than this (1600 columns of 63-byte quoted identifiers fit) is not read for its table.
const MAX_COPY_STATEMENT = 1 << 20;
// Enough of any other statement to recognise `SET standard_conforming_strings = off`.
const STATEMENT_HEAD = 64;

type State =
  | 'code' // SQL outside quotes and comments
  | 'string' // '...'; backslash escapes when `escapes`
  | 'identifier' // "..."
  | 'dollar' // $tag$ ... $tag$
  | 'line-comment' // -- to the end of the line
  | 'block-comment' // /* ... */, nested
  | 'meta' // a psql backslash command, to the end of the line
  | 'before-data' // the rest of the line ending a COPY ... FROM stdin statement
  | 'data'; // COPY data lines, up to a line `\.`

/** One COPY block of the dump, in stream order; `table` is undefined when its statement could not be read. */
export interface CopyBlock {
  table: string | undefined;
  rows: number;
  /** The statement's column list, identifiers unquoted; absent when it names none. */
  columns?: string[];
}

/** Called with each data line of a COPY block (COPY text, without its newline); the buffer is only valid during the call. */
export type CopyRowListener = (table: string | undefined, columns: string[] | undefined, line: Buffer) => void;

/** What to do besides counting rows. */
export interface CopyCounterOptions {
  /** Record checksums, key ranges and newest timestamps too (plans by `schema.table`). */
  stats?: TablePlans;
  /** Hand every data line to this listener. */
  onRow?: CopyRowListener;
}

/** A COPY block as it is read: its statistics (and row count), its column list. */
interface CopyData {
  tally: TableTally;
  columns: string[] | undefined;
}

/**
 * Counts the rows of each table in a plain-format pg_dump stream as it flows, so the counts come from
 * the dump's own snapshot. It reads the script as psql does (psqlscan.l): string literals (with
 * backslash escapes in E'' strings and when standard_conforming_strings is off), quoted identifiers,
 * dollar quoting, nested block comments, line comments, psql backslash commands, and a semicolon ends a
 * statement only outside parentheses and outside a CREATE FUNCTION ... BEGIN ATOMIC body. A statement
 * `COPY table (...) FROM stdin;` is followed by its data, one row a line up to a line `\.` (newlines in
 * values are escaped in COPY text). So no table name, comment or function body can start, end or hide a
 * block: the blocks are exactly those psql sends to the server.
 *
 * Given the tables' plans (`stats`), it also records each table's statistics (table-stats.ts): every
 * data line is a row, hashed as its bytes without the newline; its fields are split at tabs (COPY text
 * escapes a value's own tabs) and placed by the COPY statement's column list. Given a row listener
 * (`onRow`), it hands it every data line whole, with its block's table and columns.
 */
export class CopyCounter {
  private readonly found: CopyData[] = [];
  private readonly problems: string[] = [];
  private state: State = 'code';
  private standardStrings = true;
  // code: what the previous byte started
  private previousIdentifierByte = false;
  private pendingDash = false;
  private pendingSlash = false;
  // string / identifier: a quote that may be closing or the first of a doubled one; a pending backslash
  private quoteSeen = false;
  private escapes = false;
  private backslash = false;
  // dollar quoting: the tag being read after `$` in code, the open tag, and how much of its close matched
  private dollarTag: number[] | undefined;
  private openTag: number[] = [];
  private closeMatched = -1;
  // block comments
  private commentDepth = 0;
  private commentStar = false;
  private commentSlash = false;
  // the statement: parentheses, BEGIN ... END in function bodies, its first words, its text
  private parenDepth = 0;
  private beginDepth = 0;
  private words: string[] = [];
  /** The current unquoted word, lower-cased, its first 16 characters (enough for keywords). */
  private word = '';
  private wordCount = 0;
  /** Inside CREATE [OR REPLACE] FUNCTION|PROCEDURE: BEGIN ... END then holds semicolons. */
  private routine = false;
  private text = Buffer.allocUnsafe(STATEMENT_HEAD);
  private textLength = 0;
  private textLimit = STATEMENT_HEAD;
  // data: the current block, the start of the current line, the key and timestamp fields of the row
  private block: CopyData | undefined;
  /** A block the dump ended in: psql loads what it got, but the count is not the table's. */
  private unfinished: CopyData | undefined;
  private picker: FieldPicker | undefined;
  private lineHead: number[] = [];
  private lineBytes = 0;
  /** With a row listener: the parts of a data line that spans chunks. */
  private lineParts: Buffer[] = [];
  private readonly stats: TablePlans | undefined;
  private readonly onRow: CopyRowListener | undefined;

  constructor(options: CopyCounterOptions = {}) {
    this.stats = options.stats;
    this.onRow = options.onRow;
  }

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'data') at = this.dataLines(chunk, at);
      else at = this.code(chunk, at);
    }
  }

  /** Call at the end of the stream. */
  end(): void {
    if (this.state === 'data' && this.lineBytes > 0 && this.dataLine()) return;
    if (this.state === 'data' || this.state === 'before-data') {
      this.unfinished = this.block;
      this.problems.push(`the dump ended inside the data of ${this.block?.tally.name ?? 'a table'}`);
    } else if (!['code', 'line-comment', 'meta'].includes(this.state)) {
      this.problems.push(
        `the dump ended inside ${this.state === 'block-comment' ? 'a comment' : `a quoted ${this.state}`}`,
      );
    }
  }

  /**
   * Rows per table (`schema.table`), in dump order, with their statistics when asked for; a table in
   * several blocks is summed.
   */
  objects(): ObjectCount[] {
    const counts = tallyObjects(this.found.filter((block) => block !== this.unfinished).map(({ tally }) => tally));
    return this.stats ? counts : counts.map(({ name, records }) => ({ name, records }));
  }

  /** Every COPY block, in the order psql runs them. */
  blocks(): CopyBlock[] {
    return this.found.map(({ tally, columns }) => ({
      table: tally.name,
      rows: tally.records,
      ...(columns ? { columns: [...columns] } : {}),
    }));
  }

  /** What could not be counted (never expected from pg_dump's own output). */
  issues(): string[] {
    return [...this.problems];
  }

  /** Data lines from `at`; returns where the data (or the chunk) ended. */
  private dataLines(chunk: Buffer, at: number): number {
    while (at < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, at);
      const end = newline === -1 ? chunk.length : newline;
      if (this.lineBytes === 0 && newline !== -1) {
        // the common case, a whole line in the chunk: no copy
        if (this.isTerminator(chunk, at, end - at)) return this.endData(newline + 1);
        this.row(chunk, at, end);
      } else {
        for (let i = at; i < end && this.lineHead.length < 3; i++) this.lineHead.push(chunk[i] as number);
        this.lineBytes += end - at;
        if (this.stats) {
          this.block?.tally.digest.addPart(chunk, at, end);
          this.picker?.feed(chunk, at, end);
        }
        if (this.onRow) this.lineParts.push(Buffer.from(chunk.subarray(at, end)));
        if (newline === -1) return chunk.length;
        if (this.dataLine()) return newline + 1;
      }
      at = newline + 1;
    }
    return at;
  }

  /** Ends the line kept across chunks; true when it ended the data. */
  private dataLine(): boolean {
    const head = Buffer.from(this.lineHead);
    const terminator = this.isTerminator(head, 0, this.lineBytes);
    const parts = this.lineParts;
    this.lineHead = [];
    this.lineBytes = 0;
    this.lineParts = [];
    const { tally, columns } = this.block as CopyData;
    this.picker?.finish(terminator ? undefined : tally);
    if (terminator) {
      tally.digest.dropPart();
      this.endData(0);
      return true;
    }
    tally.records++;
    if (this.stats) tally.digest.endRow();
    this.onRow?.(tally.name, columns, Buffer.concat(parts));
    return false;
  }

  /** A whole data line, `chunk[at, end)`. */
  private row(chunk: Buffer, at: number, end: number): void {
    const { tally, columns } = this.block as CopyData;
    tally.records++;
    if (this.stats) {
      tally.digest.add(chunk, at, end);
      if (this.picker) {
        this.picker.feed(chunk, at, end);
        this.picker.finish(tally);
      }
    }
    this.onRow?.(tally.name, columns, chunk.subarray(at, end));
  }

  private isTerminator(bytes: Buffer, at: number, length: number): boolean {
    return (length === 2 || (length === 3 && bytes[at + 2] === CR)) && bytes[at] === BACKSLASH && bytes[at + 1] === DOT;
  }

  private endData(next: number): number {
    this.state = 'code';
    this.block = undefined;
    this.picker = undefined;
    return next;
  }

  /** SQL from `at`, byte by byte, until the chunk ends or COPY data begins; returns where it stopped. */
  private code(chunk: Buffer, at: number): number {
    for (; at < chunk.length; at++) {
      if (this.state === 'data') return at;
      // The bulk of a large object's hex, a comment or a function body: jump to the next byte that matters.
      const next = this.nextSignificant();
      if (next !== undefined) {
        const found = chunk.indexOf(next, at);
        const end = found === -1 ? chunk.length : found;
        this.keep(chunk, at, end);
        if (found === -1) return chunk.length;
        at = found;
      }
      const byte = chunk[at] as number;
      if (this.textLength < this.textLimit && this.state !== 'before-data') this.text[this.textLength++] = byte;
      this.step(byte);
    }
    return at;
  }

  /** The byte that ends the plain run of the current state, for states that have one. */
  private nextSignificant(): number | undefined {
    if (this.state === 'string' && !this.escapes && !this.quoteSeen) return QUOTE;
    if (this.state === 'dollar' && this.closeMatched < 0) return DOLLAR;
    if (this.state === 'line-comment' || this.state === 'meta' || this.state === 'before-data') return NEWLINE;
    return undefined;
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    if (this.state === 'before-data') return;
    const room = this.textLimit - this.textLength;
    if (room > 0) this.textLength += chunk.copy(this.text, this.textLength, from, Math.min(to, from + room));
  }

  private step(byte: number): void {
    switch (this.state) {
      case 'code':
        this.codeByte(byte);
        return;
      case 'string':
        if (this.backslash) this.backslash = false;
        else if (this.quoteSeen) {
          this.quoteSeen = false;
          if (byte !== QUOTE) {
            this.state = 'code';
            this.codeByte(byte);
          }
        } else if (byte === QUOTE) this.quoteSeen = true;
        else if (byte === BACKSLASH && this.escapes) this.backslash = true;
        return;
      case 'identifier':
        if (this.quoteSeen) {
          this.quoteSeen = false;
          if (byte !== DOUBLE_QUOTE) {
            this.state = 'code';
            this.previousIdentifierByte = true;
            this.codeByte(byte);
          }
        } else if (byte === DOUBLE_QUOTE) this.quoteSeen = true;
        return;
      case 'dollar':
        this.dollarByte(byte);
        return;
      case 'line-comment':
      case 'meta':
        if (byte === NEWLINE) this.state = 'code';
        return;
      case 'block-comment':
        this.commentByte(byte);
        return;
      case 'before-data':
        if (byte === NEWLINE) this.state = 'data';
        return;
      case 'data':
        return;
    }
  }

  private codeByte(byte: number): void {
    if (this.dollarTag !== undefined) {
      if (byte === DOLLAR) {
        this.openTag = this.dollarTag;
        this.dollarTag = undefined;
        this.closeMatched = -1;
        this.state = 'dollar';
        return;
      }
      if (isIdentifierByte(byte) && !(this.dollarTag.length === 0 && isDigit(byte))) {
        this.dollarTag.push(byte);
        return;
      }
      this.dollarTag = undefined; // `$1` or a lone `$`: not a quote
    }
    const dash = this.pendingDash;
    const slash = this.pendingSlash;
    this.pendingDash = false;
    this.pendingSlash = false;
    if (dash && byte === DASH) {
      this.endWord();
      this.state = 'line-comment';
      return;
    }
    if (slash && byte === STAR) {
      this.endWord();
      this.state = 'block-comment';
      this.commentDepth = 1;
      return;
    }
    if (isIdentifierByte(byte) || (byte === DOLLAR && this.previousIdentifierByte)) {
      if (this.word.length === 0 && this.wordCount === 0) {
        this.text[0] = byte; // the statement starts here
        this.textLength = 1;
      }
      if (this.word.length < 16) this.word += String.fromCharCode(byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);
      this.previousIdentifierByte = true;
      return;
    }
    const previousWord = this.word;
    const afterIdentifier = this.previousIdentifierByte;
    this.endWord();
    this.previousIdentifierByte = false;
    switch (byte) {
      case QUOTE:
        this.state = 'string';
        // E'...' (and the other prefixed forms psql lexes alike) take backslash escapes
        this.escapes = !this.standardStrings || (afterIdentifier && previousWord === 'e');
        return;
      case DOUBLE_QUOTE:
        this.state = 'identifier';
        return;
      case DOLLAR:
        this.dollarTag = [];
        return;
      case BACKSLASH:
        this.state = 'meta';
        return;
      case DASH:
        this.pendingDash = true;
        return;
      case SLASH:
        this.pendingSlash = true;
        return;
      case OPEN_PAREN:
        this.parenDepth++;
        return;
      case CLOSE_PAREN:
        if (this.parenDepth > 0) this.parenDepth--;
        return;
      case SEMICOLON:
        if (this.parenDepth === 0 && this.beginDepth === 0) this.endStatement();
        return;
    }
  }

  /** psql's heuristic for SQL-standard function bodies: CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ... END. */
  private endWord(): void {
    const word = this.word;
    if (word.length === 0) return;
    this.word = '';
    if (isDigit(word.charCodeAt(0))) return; // a number, not an identifier
    if (this.wordCount < 4) {
      this.words.push(word);
      const [first, second, third, fourth] = this.words;
      if (this.wordCount === 0 && word === 'copy') this.keepWholeStatement();
      this.routine ||=
        first === 'create' && (isRoutine(second) || (second === 'or' && third === 'replace' && isRoutine(fourth)));
    }
    this.wordCount++;
    if (!this.routine || this.parenDepth > 0) return;
    if (word === 'begin') this.beginDepth++;
    else if (word === 'case' && this.beginDepth > 0) this.beginDepth++;
    else if (word === 'end' && this.beginDepth > 0) this.beginDepth--;
  }

  private dollarByte(byte: number): void {
    if (this.closeMatched >= 0) {
      if (this.closeMatched === this.openTag.length) {
        if (byte === DOLLAR) {
          this.state = 'code';
          this.closeMatched = -1;
          return;
        }
      } else if (byte === this.openTag[this.closeMatched]) {
        this.closeMatched++;
        return;
      }
      this.closeMatched = -1;
    }
    if (byte === DOLLAR) this.closeMatched = 0;
  }

  private commentByte(byte: number): void {
    if (this.commentStar && byte === SLASH) {
      this.commentStar = false;
      if (--this.commentDepth === 0) this.state = 'code';
      return;
    }
    if (this.commentSlash && byte === STAR) {
      this.commentSlash = false;
      this.commentDepth++;
      return;
    }
    this.commentStar = byte === STAR;
    this.commentSlash = byte === SLASH;
  }

  /** A COPY statement is kept whole (up to MAX_COPY_STATEMENT): its table is read from it. */
  private keepWholeStatement(): void {
    if (this.text.length < MAX_COPY_STATEMENT) {
      const whole = Buffer.allocUnsafe(MAX_COPY_STATEMENT); // once per dump
      this.text.copy(whole, 0, 0, this.textLength);
      this.text = whole;
    }
    this.textLimit = MAX_COPY_STATEMENT;
  }

  /** A statement ended at `;`: when it is COPY ... FROM stdin, its data follows on the next line. */
  private endStatement(): void {
    const text = this.text.toString('utf8', 0, this.textLength).trim();
    const first = this.words[0];
    const complete = this.textLength < this.textLimit;
    this.textLength = 0;
    this.words = [];
    this.wordCount = 0;
    this.routine = false;
    this.beginDepth = 0;
    this.textLimit = STATEMENT_HEAD;
    if (first === 'set') {
      const setting = /^SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?/i.exec(text);
      if (setting) this.standardStrings = setting[1]?.toLowerCase() === 'on';
      return;
    }
    if (first !== 'copy') return;
    if (complete && !/\bfrom\s+stdin\s*;$/i.test(text)) return;
    const target = complete ? parseCopyStatement(text) : undefined;
    if (target === undefined) this.problems.push(`cannot read the table of: ${text.slice(0, 200)}`);
    const table = target?.table;
    const plan = table === undefined ? undefined : this.stats?.get(table);
    const positions = fieldPositions(plan, target?.columns);
    this.block = { tally: new TableTally(table, plan ?? {}), columns: target?.columns };
    this.picker =
      this.stats && (positions.key !== undefined || positions.timestamp !== undefined)
        ? new FieldPicker([positions.key, positions.timestamp], TAB)
        : undefined;
    this.found.push(this.block);
    this.state = 'before-data';
  }
}

function isRoutine(word: string | undefined): boolean {
  return word === 'function' || word === 'procedure';
}

function isIdentifierByte(byte: number): boolean {
  return (
    (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || isDigit(byte) || byte === 0x5f || byte >= 0x80
  );
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

/**
 * `schema.table` and its columns from `COPY schema.table (a, b) FROM stdin;`, identifiers unquoted;
 * `columns` is undefined when the statement has no column list (or one that cannot be read).
 */
export function parseCopyStatement(statement: string): { table: string; columns: string[] | undefined } | undefined {
  const match = /^COPY\s+/i.exec(statement);
  if (!match || !/\sFROM\s+stdin\s*;?$/i.test(statement)) return undefined;
  const parts: string[] = [];
  let at = match[0].length;
  for (;;) {
    const identifier = readIdentifier(statement, at);
    if (!identifier) return undefined;
    parts.push(identifier.name);
    at = identifier.end;
    if (statement[at] !== '.') break;
    at++;
  }
  if (parts.length > 2 || !/\s/.test(statement[at] ?? '')) return undefined;
  return { table: parts.join('.'), columns: readColumnList(statement, at) };
}

/** `(a, "b c")` from `at` (after blanks), unquoted; undefined when there is none or it cannot be read. */
function readColumnList(statement: string, start: number): string[] | undefined {
  let at = start;
  while (/\s/.test(statement[at] ?? '')) at++;
  if (statement[at] !== '(') return undefined;
  const columns: string[] = [];
  at++;
  for (;;) {
    while (/\s/.test(statement[at] ?? '')) at++;
    const identifier = readIdentifier(statement, at);
    if (!identifier) return undefined;
    columns.push(identifier.name);
    at = identifier.end;
    while (/\s/.test(statement[at] ?? '')) at++;
    if (statement[at] === ')') return columns;
    if (statement[at] !== ',') return undefined;
    at++;
  }
}

function readIdentifier(line: string, start: number): { name: string; end: number } | undefined {
  if (line[start] !== '"') {
    let end = start;
    while (end < line.length && !' \t\n.(),"'.includes(line[end] as string)) end++;
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
