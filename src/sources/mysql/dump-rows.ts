/**
 * Counts the rows of each table in a mariadb-dump / mysqldump stream as it flows, so the counts come from
 * exactly the snapshot that was dumped. Rows are the top-level tuples of `INSERT INTO `t` VALUES (...),(...);`
 * statements, with or without a column list (mariadb-dump names the columns when a table has INVISIBLE
 * columns, and the history columns with `--dump-history`); tables appear from their `CREATE TABLE` (so an
 * empty table counts 0).
 *
 * The scanner follows the statement rules of the mariadb client that will replay the dump: `'`, `"` strings
 * with backslash escapes (a doubled quote closes and reopens, which counts the same), backtick identifiers,
 * `-- `, `#` and block comments, versioned comments (`/*!50003 ... *\/`, `/*M!100005 ... *\/`) whose content is
 * SQL, and `DELIMITER` lines, so an `INSERT` inside a procedure or trigger body is never counted. Chunks may
 * end anywhere: a few bytes of look-ahead are carried into the next chunk.
 */

enum Mode {
  Normal,
  Single,
  Double,
  Backtick,
  LineComment,
  BlockComment,
  /** Digits after `/*!` or `/*M!`. */
  Version,
  /** The rest of a `DELIMITER xx` line. */
  DelimiterCommand,
}

enum Kind {
  /** The statement's head is still being read. */
  Undecided,
  Insert,
  /** An INSERT's column list (`INSERT INTO `t` (`a`, row_start) VALUES ...`: invisible or history columns). */
  InsertColumns,
  Other,
}

const QUOTE = 0x27;
const DQUOTE = 0x22;
const BACKTICK = 0x60;
const BACKSLASH = 0x5c;
const HASH = 0x23;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const BANG = 0x21;
const LPAREN = 0x28;
const RPAREN = 0x29;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const M = 0x4d;

const HEAD_MAX = 1024;
const EMPTY = Buffer.alloc(0);
const IDENTIFIER = '(`(?:[^`]|``)+`)';
const INSERT_HEAD = new RegExp(`^(?:INSERT|REPLACE)(?: IGNORE)? INTO ${IDENTIFIER} ?(VALUES)?$`, 'i');
const CREATE_TABLE_HEAD = new RegExp(`^CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?${IDENTIFIER}$`, 'i');
const DELIMITER_HEAD = /^DELIMITER $/i;

export interface TableRows {
  table: string;
  rows: number;
}

/**
 * Called with each row of an INSERT: the table, its columns (the INSERT's column list, else those of the
 * dump's CREATE TABLE), and the tuple's text between its parentheses (insert-values.ts reads it). The buffer
 * is only valid during the call.
 */
export type InsertRowListener = (table: string, columns: string[] | undefined, tuple: Buffer) => void;

export class DumpRowCounter {
  private readonly counts = new Map<string, number>();
  // With a row listener: the raw bytes of the tuple, column list or CREATE TABLE body being read.
  private captureStart = -1;
  private captureParts: Buffer[] = [];
  private creating: string | undefined;
  private insertColumns: string[] | undefined;
  private readonly tableColumns = new Map<string, string[]>();

  constructor(private readonly onRow?: InsertRowListener) {}

  private carry: Buffer = EMPTY;
  private delimiter: Buffer = Buffer.from(';');
  private mode = Mode.Normal;
  private inVersionedComment = false;

  // The current statement.
  private kind = Kind.Undecided;
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLength = 0;
  private table = '';
  private rows = 0;
  private depth = 0;
  private delimiterLine: number[] = [];

  /** Scans one chunk of the dump; the last few bytes wait for the next chunk (or `end`). */
  push(chunk: Buffer): void {
    const buffer = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const consumed = this.scan(buffer, false);
    this.carry = consumed < buffer.length ? Buffer.from(buffer.subarray(consumed)) : EMPTY;
  }

  /** Scans what is left; a last statement without its delimiter still counts (the client runs it too). */
  end(): void {
    this.scan(this.carry, true);
    this.carry = EMPTY;
    this.endStatement();
  }

  /** Tables in order of appearance, with the rows seen so far. */
  tables(): TableRows[] {
    const result = [...this.counts].map(([table, rows]) => ({ table, rows }));
    if ((this.kind === Kind.Insert || this.kind === Kind.InsertColumns) && this.rows > 0) {
      const current = result.find((t) => t.table === this.table);
      if (current) current.rows += this.rows;
      else result.push({ table: this.table, rows: this.rows });
    }
    return result;
  }

  /** With a row listener: the columns of a table, from its CREATE TABLE in the dump. */
  columnsOf(table: string): string[] | undefined {
    return this.tableColumns.get(table);
  }

  /** Returns how many bytes were consumed; without `atEnd`, stops where look-ahead would pass the end. */
  private scan(b: Buffer, atEnd: boolean): number {
    const lookahead = Math.max(4, this.delimiter.length);
    const limit = atEnd ? b.length : b.length - lookahead;
    let i = 0;
    while (i < limit) {
      const c = b[i] as number;
      switch (this.mode) {
        case Mode.Single:
        case Mode.Double: {
          // Jump to the next quote or backslash: string bodies are most of a dump.
          const quote = this.mode === Mode.Single ? QUOTE : DQUOTE;
          let j = i;
          while (j < limit) {
            const d = b[j];
            if (d === quote || d === BACKSLASH) break;
            j++;
          }
          if (j >= limit) {
            i = j;
            break;
          }
          if (b[j] === BACKSLASH) i = j + 2;
          else {
            this.mode = Mode.Normal;
            i = j + 1;
          }
          break;
        }
        case Mode.Backtick:
          this.appendHead(c);
          if (c === BACKTICK) this.mode = Mode.Normal;
          i++;
          break;
        case Mode.LineComment: {
          const j = b.indexOf(NEWLINE, i);
          if (j < 0 || j >= limit) i = limit;
          else {
            this.mode = Mode.Normal;
            this.space();
            i = j + 1;
          }
          break;
        }
        case Mode.BlockComment:
          if (c === STAR && b[i + 1] === SLASH) {
            this.mode = Mode.Normal;
            this.space();
            i += 2;
          } else i++;
          break;
        case Mode.Version:
          if (c >= 0x30 && c <= 0x39) i++;
          else this.mode = Mode.Normal;
          break;
        case Mode.DelimiterCommand:
          if (c === NEWLINE) this.setDelimiter();
          else this.delimiterLine.push(c);
          i++;
          break;
        default:
          i = this.normal(b, i, c);
      }
    }
    if (atEnd && this.mode === Mode.DelimiterCommand) this.setDelimiter();
    if (this.captureStart >= 0) {
      this.captureParts.push(Buffer.from(b.subarray(this.captureStart, i)));
      this.captureStart = 0; // the next scan's buffer starts where this one stopped
    }
    return i;
  }

  /** One step outside strings and comments; returns the next position. */
  private normal(b: Buffer, i: number, c: number): number {
    if (c === this.delimiter[0] && this.atDelimiter(b, i)) {
      if (this.creating !== undefined) this.tableColumns.set(this.creating, createTableColumns(this.endCapture(b, i)));
      this.endStatement();
      return i + this.delimiter.length;
    }
    switch (c) {
      case QUOTE:
      case DQUOTE:
        if (this.kind === Kind.Undecided) this.decide();
        this.mode = c === QUOTE ? Mode.Single : Mode.Double;
        return i + 1;
      case BACKTICK:
        this.appendHead(c);
        this.mode = Mode.Backtick;
        return i + 1;
      case HASH:
        this.mode = Mode.LineComment;
        return i + 1;
      case DASH:
        if (b[i + 1] === DASH && (b[i + 2] === undefined || (b[i + 2] as number) <= SPACE)) {
          this.mode = Mode.LineComment;
          return i + 2;
        }
        break;
      case SLASH:
        if (b[i + 1] === STAR) {
          if (b[i + 2] === BANG || (b[i + 2] === M && b[i + 3] === BANG)) {
            this.inVersionedComment = true;
            this.mode = Mode.Version;
            this.space();
            return i + (b[i + 2] === BANG ? 3 : 4);
          }
          this.mode = Mode.BlockComment;
          return i + 2;
        }
        break;
      case STAR:
        if (this.inVersionedComment && b[i + 1] === SLASH) {
          this.inVersionedComment = false;
          this.space();
          return i + 2;
        }
        break;
      case LPAREN:
        if (this.kind === Kind.Undecided) this.decide();
        if (this.kind === Kind.InsertColumns) {
          if (this.depth++ === 0) this.startCapture(i + 1);
        } else if (this.kind === Kind.Insert && this.depth++ === 0) {
          this.rows++;
          this.startCapture(i + 1);
        } else if (this.creating !== undefined && this.captureStart < 0) this.startCapture(i);
        return i + 1;
      case RPAREN:
        if (this.depth > 0 && --this.depth === 0) {
          if (this.kind === Kind.InsertColumns) {
            this.kind = Kind.Insert;
            if (this.onRow) this.insertColumns = identifiers(this.endCapture(b, i).toString('utf8'));
          } else if (this.kind === Kind.Insert && this.onRow)
            this.onRow(this.table, this.insertColumns ?? this.tableColumns.get(this.table), this.endCapture(b, i));
        }
        return i + 1;
    }
    if (c <= SPACE) this.space();
    else this.appendHead(c);
    return i + 1;
  }

  private atDelimiter(b: Buffer, i: number): boolean {
    const d = this.delimiter;
    for (let k = 1; k < d.length; k++) if (b[i + k] !== d[k]) return false;
    return true;
  }

  private appendHead(c: number): void {
    if (this.kind !== Kind.Undecided) return;
    if (this.headLength === HEAD_MAX) {
      this.kind = Kind.Other;
      return;
    }
    this.head[this.headLength++] = c;
  }

  /** Whitespace and comments separate words in the head; a `DELIMITER` command starts here. */
  private space(): void {
    if (this.kind !== Kind.Undecided || this.headLength === 0 || this.head[this.headLength - 1] === SPACE) return;
    this.appendHead(SPACE);
    if (
      this.headLength === 10 &&
      !this.inVersionedComment &&
      this.mode === Mode.Normal &&
      DELIMITER_HEAD.test(this.headText())
    ) {
      this.mode = Mode.DelimiterCommand;
      this.delimiterLine = [];
    }
  }

  private headText(): string {
    return this.head.toString('utf8', 0, this.headLength);
  }

  /** At the statement's first `(` or string: is it an INSERT (which table) or a CREATE TABLE? */
  private decide(): void {
    const head = this.headText().trim();
    const insert = INSERT_HEAD.exec(head);
    if (insert?.[1]) {
      this.kind = insert[2] ? Kind.Insert : Kind.InsertColumns;
      this.table = unquote(insert[1]);
      return;
    }
    const create = CREATE_TABLE_HEAD.exec(head);
    if (create?.[1]) {
      const table = unquote(create[1]);
      if (!this.counts.has(table)) this.counts.set(table, 0);
      if (this.onRow) this.creating = table;
    }
    this.kind = Kind.Other;
  }

  private endStatement(): void {
    if (this.kind === Kind.Undecided && this.headLength > 0) this.decide();
    if (this.kind === Kind.Insert || this.kind === Kind.InsertColumns)
      this.counts.set(this.table, (this.counts.get(this.table) ?? 0) + this.rows);
    this.kind = Kind.Undecided;
    this.headLength = 0;
    this.rows = 0;
    this.depth = 0;
    this.inVersionedComment = false;
    this.creating = undefined;
    this.insertColumns = undefined;
    this.captureStart = -1;
    this.captureParts = [];
  }

  private startCapture(at: number): void {
    if (!this.onRow) return;
    this.captureStart = at;
    this.captureParts = [];
  }

  /** The bytes captured up to `at` (exclusive) of `b`. */
  private endCapture(b: Buffer, at: number): Buffer {
    const last = b.subarray(Math.max(this.captureStart, 0), at);
    const captured = this.captureParts.length ? Buffer.concat([...this.captureParts, last]) : last;
    this.captureStart = -1;
    this.captureParts = [];
    return captured;
  }

  private setDelimiter(): void {
    const line = Buffer.from(this.delimiterLine).toString('utf8').trim();
    const delimiter = line.split(/\s/)[0];
    if (delimiter) this.delimiter = Buffer.from(delimiter);
    this.delimiterLine = [];
    this.mode = Mode.Normal;
    this.kind = Kind.Undecided;
    this.headLength = 0;
  }
}

/** The backtick-quoted names of a list such as `` `a`, `b c` ``. */
function identifiers(list: string): string[] {
  return [...list.matchAll(/`((?:[^`]|``)+)`/g)].map((m) => unquote(m[0]));
}

/** Column names of a CREATE TABLE body as mariadb-dump writes it (SHOW CREATE TABLE: one column a line, keys after). */
function createTableColumns(body: Buffer): string[] {
  return [...body.toString('utf8').matchAll(/^\s+(`(?:[^`]|``)+`)/gm)].map((m) => unquote(m[1] as string));
}

function unquote(identifier: string): string {
  return identifier.slice(1, -1).replaceAll('``', '`');
}
