import type { ObjectCount } from '../source.ts';
import { FieldBytes, fieldPositions, type TableColumns, TableTally } from '../table-stats.ts';

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
 *
 * Given the tables' plans (`stats`), it also records each table's statistics (table-stats.ts): a row is
 * hashed as its tuple's bytes from `(` to `)`, and its fields are split at the tuple's top-level commas
 * (commas in strings are skipped with them) and placed by the INSERT's column list, or without one by
 * the table's columns in order (mariadb-dump lists them whenever it leaves some out).
 *
 * Given a row listener (`onRow`), it hands it every row's tuple whole, with the table's columns: the
 * INSERT's column list, else those of the dump's CREATE TABLE.
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
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const M = 0x4d;

/** The bytes `normal` acts on once a statement's head is read (any other is skipped, bar the delimiter's first). */
const MAY_MATTER = new Uint8Array(256);
for (const byte of [QUOTE, DQUOTE, BACKTICK, HASH, DASH, SLASH, STAR, LPAREN, RPAREN, COMMA]) MAY_MATTER[byte] = 1;

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

/** What to read of a table: its columns in order, its integer key and its timestamp column. */
export interface MySQLTablePlan extends TableColumns {
  columns: string[];
}

/**
 * Called with each row of an INSERT: the table, its columns (the INSERT's column list, else those of the
 * dump's CREATE TABLE), and the tuple's text between its parentheses (insert-values.ts reads it). The buffer
 * is only valid during the call.
 */
export type InsertRowListener = (table: string, columns: string[] | undefined, tuple: Buffer) => void;

/** What to do besides counting rows. */
export interface DumpRowCounterOptions {
  /** Record checksums, key ranges and newest timestamps too (plans by table name). */
  stats?: ReadonlyMap<string, MySQLTablePlan>;
  /** Hand every row to this listener. */
  onRow?: InsertRowListener;
}

const FIELD_LIMIT = 64;

export class DumpRowCounter {
  private readonly counts = new Map<string, number>();
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

  // What is being read (with `stats` or `onRow` only): the current row `(...)`, an INSERT's column list,
  // or (for the listener) a CREATE TABLE body. `captureStart` is its offset in the buffer being scanned,
  // -1 when nothing is; at a chunk's end the bytes so far go to the row's digest (`rowSpans`) and, when
  // the text is needed whole (`keepWhole`), to `captured`.
  private captureStart = -1;
  private keepWhole = false;
  private captured: Buffer[] = [];
  private rowSpans = false;

  // Statistics of the current INSERT's rows (with `stats` only): its table's tally, where the key and
  // timestamp fields are, and what of the current field is not yet read (from `fieldStart`, as above).
  private readonly tallies = new Map<string, TableTally>();
  private tally: TableTally | undefined;
  private positions: [number | undefined, number | undefined] = [undefined, undefined];
  private fieldIndex = 0;
  private fieldStart = -1;
  /** The current field's bytes from chunks before (when it is the key or the timestamp). */
  private readonly fieldBytes = new FieldBytes();
  /** The current row's key and timestamp fields, applied when the row ends. */
  private readonly rowFields = [new FieldBytes(), new FieldBytes()] as const;

  // For the row listener: the table whose CREATE TABLE is being read, the INSERT's column list, the
  // columns of each table's CREATE TABLE.
  private creating: string | undefined;
  private insertColumns: string[] | undefined;
  private readonly tableColumns = new Map<string, string[]>();

  private readonly stats: ReadonlyMap<string, MySQLTablePlan> | undefined;
  private readonly onRow: InsertRowListener | undefined;

  constructor(options: DumpRowCounterOptions = {}) {
    this.stats = options.stats;
    this.onRow = options.onRow;
  }

  /** Scans one chunk of the dump; the last few bytes wait for the next chunk (or `end`). */
  push(chunk: Buffer): void {
    const buffer = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const consumed = this.scan(buffer, false);
    this.keepPartial(buffer, consumed);
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

  /** Rows per table, with their statistics when asked for. */
  objects(): ObjectCount[] {
    return this.tables().map(({ table, rows }) => {
      if (!this.stats) return { name: table, records: rows };
      const tally = this.tallies.get(table) ?? new TableTally(table, this.plan(table));
      return { ...tally.count(table), records: rows };
    });
  }

  /** With a row listener: the columns of a table, from its CREATE TABLE in the dump. */
  columnsOf(table: string): string[] | undefined {
    return this.tableColumns.get(table);
  }

  private plan(table: string): TableColumns {
    const plan = this.stats?.get(table);
    return plan
      ? { ...(plan.key ? { key: plan.key } : {}), ...(plan.timestamp ? { timestamp: plan.timestamp } : {}) }
      : {};
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
          if (this.kind !== Kind.Undecided) {
            // Past the statement's head, most bytes (a row's numbers) mean nothing: skip to the next that may.
            const delimiter = this.delimiter[0] as number;
            let j = i;
            while (j < limit) {
              const d = b[j] as number;
              if (MAY_MATTER[d] === 1 || d === delimiter) break;
              j++;
            }
            if (j >= limit) {
              i = j;
              break;
            }
            i = j;
          }
          i = this.normal(b, i, b[i] as number);
      }
    }
    if (atEnd && this.mode === Mode.DelimiterCommand) this.setDelimiter();
    return i;
  }

  /** One step outside strings and comments; returns the next position. */
  private normal(b: Buffer, i: number, c: number): number {
    if (c === this.delimiter[0] && this.atDelimiter(b, i)) {
      if (this.creating !== undefined && this.captureStart >= 0)
        this.tableColumns.set(this.creating, createTableColumns(this.endCapture(b, i)));
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
          if (this.depth++ === 0 && (this.tally || this.onRow)) this.startCapture(i, true);
        } else if (this.kind === Kind.Insert && this.depth++ === 0) {
          this.rows++;
          if (this.tally || this.onRow) this.startRow(i);
        } else if (this.creating !== undefined && this.captureStart < 0) this.startCapture(i, true);
        return i + 1;
      case RPAREN:
        if (this.depth > 0 && --this.depth === 0) {
          if (this.kind === Kind.InsertColumns) {
            if (this.captureStart >= 0) this.endColumnList(b, i);
            this.kind = Kind.Insert;
          } else if (this.kind === Kind.Insert && this.captureStart >= 0) this.endRow(b, i);
        }
        return i + 1;
      case COMMA:
        if (this.depth === 1 && this.kind === Kind.Insert && this.tally) {
          this.endField(b, i);
          this.fieldIndex++;
          this.fieldStart = i + 1;
        }
        break;
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
      if (this.stats) this.startInsert(insert[2] ? this.stats.get(this.table)?.columns : undefined);
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
    this.captureStart = -1;
    this.captured = [];
    this.tally = undefined;
    this.fieldStart = -1;
    this.creating = undefined;
    this.insertColumns = undefined;
  }

  /** An INSERT into `this.table` begins; `columns`: its fields, unless a column list follows. */
  private startInsert(columns: string[] | undefined): void {
    let tally = this.tallies.get(this.table);
    if (!tally) {
      tally = new TableTally(this.table, this.plan(this.table));
      this.tallies.set(this.table, tally);
    }
    this.tally = tally;
    this.placeFields(columns);
  }

  private placeFields(columns: string[] | undefined): void {
    const { key, timestamp } = fieldPositions(this.tally?.columns, columns);
    this.positions = [key, timestamp];
  }

  /** Starts reading b[at...]; `whole`: its text is needed whole, not only hashed. */
  private startCapture(at: number, whole: boolean): void {
    this.captureStart = at;
    this.keepWhole = whole;
    if (this.captured.length) this.captured = [];
  }

  /** What was read, up to b[end) (exclusive), as one buffer. */
  private endCapture(b: Buffer, end: number): Buffer {
    const last = b.subarray(this.captureStart, end);
    const text = this.captured.length ? Buffer.concat([...this.captured, last]) : last;
    this.captureStart = -1;
    this.captured = [];
    return text;
  }

  /** The column list ends at b[i]: `(`a`, `b c`)`, identifiers unquoted. */
  private endColumnList(b: Buffer, i: number): void {
    const columns = identifiers(this.endCapture(b, i + 1).toString('utf8'));
    if (this.tally) this.placeFields(columns);
    this.insertColumns = columns;
  }

  /** A row starts at b[i] (its `(`). */
  private startRow(i: number): void {
    this.startCapture(i, this.onRow !== undefined);
    this.rowSpans = false;
    if (!this.tally) return;
    this.fieldIndex = 0;
    this.fieldStart = i + 1;
    this.fieldBytes.clear();
    this.rowFields[0].clear();
    this.rowFields[1].clear();
  }

  /** The current field ends at b[i]: kept when it is the key or the timestamp. */
  private endField(b: Buffer, i: number): void {
    const slot = this.positions.indexOf(this.fieldIndex);
    const before = Math.max(this.fieldBytes.length, 0);
    if (slot !== -1 && this.fieldStart >= 0 && i - this.fieldStart + before <= FIELD_LIMIT) {
      const field = this.rowFields[slot as 0 | 1];
      field.clear();
      field.append(this.fieldBytes.bytes, 0, before);
      field.append(b, this.fieldStart, i);
    }
    this.fieldBytes.clear();
  }

  /** The row ends at b[i] (its `)`). */
  private endRow(b: Buffer, i: number): void {
    const tally = this.tally;
    if (tally) {
      this.endField(b, i);
      if (this.rowSpans) {
        tally.digest.addPart(b, this.captureStart, i + 1);
        tally.digest.endRow();
      } else tally.digest.add(b, this.captureStart, i + 1);
      valueField(this.rowFields[0], tally, true);
      valueField(this.rowFields[1], tally, false);
      this.fieldStart = -1;
    }
    if (!this.onRow) {
      this.captureStart = -1;
      return;
    }
    const row = this.endCapture(b, i + 1);
    this.onRow(this.table, this.insertColumns ?? this.tableColumns.get(this.table), row.subarray(1, row.length - 1));
  }

  /** At a chunk's end (`consumed` bytes scanned): what the current row, field, column list or CREATE TABLE holds so far. */
  private keepPartial(b: Buffer, consumed: number): void {
    if (this.captureStart >= 0) {
      const part = b.subarray(this.captureStart, consumed);
      if (this.kind === Kind.Insert && this.tally) {
        this.tally.digest.addPart(b, this.captureStart, consumed);
        this.rowSpans = true;
      }
      if (this.keepWhole) this.captured.push(Buffer.from(part));
      this.captureStart = 0;
    }
    if (this.fieldStart >= 0) {
      if (this.positions.includes(this.fieldIndex)) this.fieldBytes.append(b, this.fieldStart, consumed);
      this.fieldStart = 0;
    }
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

/**
 * Hands a row's key or timestamp field to `sink` as mariadb-dump writes it: `42`, `'2024-01-01 10:00:00'`
 * (blanks around and the quotes dropped), `NULL`. Bytes when ASCII, else as text.
 */
function valueField(field: FieldBytes, sink: TableTally, isKey: boolean): void {
  if (!field.usable) return;
  const bytes = field.bytes;
  let start = 0;
  let end = field.length;
  for (let i = start; i < end; i++)
    if ((bytes[i] as number) >= 0x80) {
      const text = fieldText(bytes.toString('utf8', 0, end));
      if (isKey) sink.fields(text, undefined);
      else sink.fields(undefined, text);
      return;
    }
  // String.prototype.trim's ASCII blanks: tab, line feed, vertical tab, form feed, carriage return, space.
  while (start < end && isBlank(bytes[start] as number)) start++;
  while (end > start && isBlank(bytes[end - 1] as number)) end--;
  if (end - start >= 2 && bytes[start] === QUOTE && bytes[end - 1] === QUOTE) {
    start++;
    end--;
  }
  if (isKey) sink.key(bytes, start, end);
  else sink.timestamp(bytes, start, end);
}

function isBlank(byte: number): boolean {
  return byte === SPACE || (byte >= 0x09 && byte <= 0x0d);
}

/** A key or timestamp as mariadb-dump writes it: `42`, `'2024-01-01 10:00:00'` (quotes dropped), `NULL`. */
function fieldText(text: string): string {
  const trimmed = text.trim();
  return trimmed.length >= 2 && trimmed.startsWith("'") && trimmed.endsWith("'") ? trimmed.slice(1, -1) : trimmed;
}

/** The backtick-quoted names of a list such as `` (`a`, `b c`) ``. */
function identifiers(list: string): string[] {
  return [...list.matchAll(/`(?:[^`]|``)+`/g)].map((m) => unquote(m[0]));
}

/** Column names of a CREATE TABLE body as mariadb-dump writes it (SHOW CREATE TABLE: one column a line, keys after). */
function createTableColumns(body: Buffer): string[] {
  return [...body.toString('utf8').matchAll(/^\s+(`(?:[^`]|``)+`)/gm)].map((m) => unquote(m[1] as string));
}

function unquote(identifier: string): string {
  return identifier.slice(1, -1).replaceAll('``', '`');
}
