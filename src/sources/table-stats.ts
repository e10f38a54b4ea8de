import { TidemarkError } from '../errors.ts';
import type { ObjectCount } from './source.ts';

/**
 * What a dump records per table besides its row count (docs/repository-format.md, "Table statistics"):
 * an order-independent checksum of the rows as the dump carries them, the range of a single-column
 * integer primary key, and the newest value of a timestamp column. Engine-neutral: the dump scanners
 * (postgres/copy-counter.ts, mysql/dump-rows.ts) hand each row's bytes and the text of the two fields.
 */

/** Which columns of a table to read: an integer single-column primary key, a timestamp column. */
export interface TableColumns {
  key?: string;
  timestamp?: string;
}

/** Per table (named as in the dump: `schema.table` / `table`), the columns to read. */
export type TablePlans = ReadonlyMap<string, TableColumns>;

/** The agent's variable naming timestamp columns per table: a JSON object of strings (the Job sets it from the policy). */
export const TIMESTAMP_COLUMNS_ENV = 'TIDEMARK_TIMESTAMP_COLUMNS';

/** The timestamp columns of TIMESTAMP_COLUMNS_ENV; unset or empty: none named. */
export function timestampColumnsFrom(env: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const text = env[TIMESTAMP_COLUMNS_ENV];
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    Object.values(parsed).some((column) => typeof column !== 'string' || column === '')
  )
    throw new TidemarkError(
      'InvalidArgument',
      `${TIMESTAMP_COLUMNS_ENV} must be a JSON object naming a column per table ({"public.orders": "updated_at"})`,
    );
  return parsed as Record<string, string>;
}

/** Timestamp columns preferred, in order, when a table has several and the policy names none. */
const PREFERRED_TIMESTAMPS = [
  'updated_at',
  'modified_at',
  'last_modified',
  'updated',
  'modified',
  'changed_at',
  'created_at',
  'inserted_at',
  'created',
];

/**
 * The timestamp column of a table: the one the policy names; else its only timestamp column; else the
 * first of PREFERRED_TIMESTAMPS it has (case-insensitive); else none.
 */
export function chooseTimestampColumn(candidates: readonly string[], named: string | undefined): string | undefined {
  if (named !== undefined) return named;
  if (candidates.length === 1) return candidates[0];
  for (const preferred of PREFERRED_TIMESTAMPS) {
    const found = candidates.find((c) => c.toLowerCase() === preferred);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The column the policy names for `table` (keys: `db.table` / `schema.table` / `table`, first found). */
export function namedTimestamp(
  timestampColumns: Readonly<Record<string, string>> | undefined,
  names: readonly string[],
): string | undefined {
  if (!timestampColumns) return undefined;
  for (const name of names) if (Object.hasOwn(timestampColumns, name)) return timestampColumns[name];
  return undefined;
}

/** Field positions of a plan in a row whose columns are `columns` (absent when not among them). */
export function fieldPositions(plan: TableColumns | undefined, columns: readonly string[] | undefined) {
  const at = (name: string | undefined) => {
    if (name === undefined || columns === undefined) return undefined;
    const index = columns.indexOf(name);
    return index === -1 ? undefined : index;
  };
  return { key: at(plan?.key), timestamp: at(plan?.timestamp) };
}

const DIGEST_WORDS = 4; // 128 bits, as four 32-bit words, most significant first

/**
 * The sum modulo 2^128 of a 128-bit hash of every row: MurmurHash3_x86_128 (seed 0) of the row's bytes,
 * its 16 output bytes read as a little-endian integer. A sum, not an xor, so two equal rows do not
 * cancel out; order-independent, so a table dumped in another physical order, or in several blocks,
 * sums the same. Murmur rather than SHA-256: computed in JavaScript, without a native call per row
 * (which cost ~4 µs a row, 20 times the rest of the scan); a checksum detects damage and loss, not forgery.
 */
export class RowDigest {
  private readonly words = new Uint32Array(DIGEST_WORDS);
  private readonly hash = new Murmur128();

  /** A whole row. */
  add(row: Buffer): void {
    this.hash.update(row, 0, row.length);
    this.addHash();
  }

  /** Part of a row that spans chunks; `endRow` ends it. */
  addPart(part: Buffer): void {
    this.hash.update(part, 0, part.length);
  }

  /** Forgets the part read so far (it was not a row after all). */
  dropPart(): void {
    this.hash.reset();
  }

  endRow(): void {
    this.addHash();
  }

  /** Adds another digest (the same table dumped in several blocks). */
  merge(other: RowDigest): void {
    this.addWords(
      other.words[0] as number,
      other.words[1] as number,
      other.words[2] as number,
      other.words[3] as number,
    );
  }

  /** 32 lowercase hex digits. */
  hex(): string {
    return [...this.words].map((w) => w.toString(16).padStart(8, '0')).join('');
  }

  private addHash(): void {
    const { h1, h2, h3, h4 } = this.hash.finish();
    this.addWords(h4, h3, h2, h1);
  }

  private addWords(w0: number, w1: number, w2: number, w3: number): void {
    const add = [w0, w1, w2, w3];
    let carry = 0;
    for (let i = DIGEST_WORDS - 1; i >= 0; i--) {
      const sum = (this.words[i] as number) + (add[i] as number) + carry;
      this.words[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
  }
}

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;
const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const fmix = (h: number) => {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
};

/** MurmurHash3_x86_128 with seed 0 (Austin Appleby's smhasher), fed in pieces; `finish` returns it and resets. */
export class Murmur128 {
  private h1 = 0;
  private h2 = 0;
  private h3 = 0;
  private h4 = 0;
  private length = 0;
  private readonly tail = Buffer.alloc(16);
  private tailLength = 0;

  update(data: Buffer, start: number, end: number): void {
    let i = start;
    this.length += end - start;
    if (this.tailLength > 0) {
      while (this.tailLength < 16 && i < end) this.tail[this.tailLength++] = data[i++] as number;
      if (this.tailLength < 16) return;
      this.block(this.tail, 0);
      this.tailLength = 0;
    }
    for (; i + 16 <= end; i += 16) this.block(data, i);
    while (i < end) this.tail[this.tailLength++] = data[i++] as number;
  }

  finish(): { h1: number; h2: number; h3: number; h4: number } {
    let { h1, h2, h3, h4 } = this;
    const t = this.tail;
    const n = this.tailLength;
    if (n > 12) {
      let k4 = 0;
      for (let j = n - 1; j >= 12; j--) k4 = (k4 << 8) | (t[j] as number);
      h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    }
    if (n > 8) {
      let k3 = 0;
      for (let j = Math.min(n, 12) - 1; j >= 8; j--) k3 = (k3 << 8) | (t[j] as number);
      h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    }
    if (n > 4) {
      let k2 = 0;
      for (let j = Math.min(n, 8) - 1; j >= 4; j--) k2 = (k2 << 8) | (t[j] as number);
      h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    }
    if (n > 0) {
      let k1 = 0;
      for (let j = Math.min(n, 4) - 1; j >= 0; j--) k1 = (k1 << 8) | (t[j] as number);
      h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    }
    const len = (this.length % 2 ** 32) | 0;
    h1 ^= len;
    h2 ^= len;
    h3 ^= len;
    h4 ^= len;
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0;
    h3 = (h3 + h1) | 0;
    h4 = (h4 + h1) | 0;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h3 = fmix(h3);
    h4 = fmix(h4);
    h1 = (h1 + h2 + h3 + h4) >>> 0;
    h2 = (h2 + h1) >>> 0;
    h3 = (h3 + h1) >>> 0;
    h4 = (h4 + h1) >>> 0;
    this.reset();
    return { h1, h2, h3, h4 };
  }

  reset(): void {
    this.h1 = 0;
    this.h2 = 0;
    this.h3 = 0;
    this.h4 = 0;
    this.length = 0;
    this.tailLength = 0;
  }

  private block(b: Buffer, i: number): void {
    const k1 =
      (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
    const k2 =
      (b[i + 4] as number) | ((b[i + 5] as number) << 8) | ((b[i + 6] as number) << 16) | ((b[i + 7] as number) << 24);
    const k3 =
      (b[i + 8] as number) |
      ((b[i + 9] as number) << 8) |
      ((b[i + 10] as number) << 16) |
      ((b[i + 11] as number) << 24);
    const k4 =
      (b[i + 12] as number) |
      ((b[i + 13] as number) << 8) |
      ((b[i + 14] as number) << 16) |
      ((b[i + 15] as number) << 24);
    let { h1, h2, h3, h4 } = this;
    h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
    h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
    h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
    h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    this.h4 = h4;
  }
}

/** An integer as its decimal text (optional sign, digits), or undefined (NULL, not an integer). */
export function integerKey(text: string): bigint | undefined {
  return INTEGER.test(text) ? BigInt(text) : undefined;
}

const INTEGER = /^[+-]?\d{1,40}$/;

/** Compares two integers written in decimal (INTEGER), without BigInt: sign, then length, then digits. */
function compareIntegers(a: string, b: string): number {
  const negative = a[0] === '-';
  if (negative !== (b[0] === '-')) return negative ? -1 : 1;
  const x = digits(a);
  const y = digits(b);
  const magnitude = x.length !== y.length ? x.length - y.length : x < y ? -1 : x > y ? 1 : 0;
  return negative ? -magnitude : magnitude;
}

function digits(text: string): string {
  let start = text[0] === '-' || text[0] === '+' ? 1 : 0;
  while (start < text.length - 1 && text[start] === '0') start++;
  return text.slice(start);
}

const TIMESTAMP =
  /^(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?( BC)?$/;

/** An instant: whole seconds since 1970-01-01 UTC (±Infinity for PostgreSQL's infinities) and microseconds. */
type Instant = [seconds: number, micros: number];

/**
 * A timestamp or date as the dump writes it (PostgreSQL ISO style with an optional UTC offset and ` BC`,
 * `infinity`; MariaDB `YYYY-MM-DD HH:MM:SS[.ffffff]`, zero dates included), as an instant; undefined for
 * anything else. Numbers, not BigInt (this runs for every row): seconds stay exact far beyond year 294276.
 */
function timestampInstant(text: string): Instant | undefined {
  if (text === 'infinity') return [Number.POSITIVE_INFINITY, 0];
  if (text === '-infinity') return [Number.NEGATIVE_INFINITY, 0];
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os, bc] = m;
  const year = bc ? 1 - Number(y) : Number(y);
  const offset = sign ? (sign === '-' ? -1 : 1) * ((Number(oh) * 60 + Number(om ?? 0)) * 60 + Number(os ?? 0)) : 0;
  const seconds =
    daysFromCivil(year, Number(mo), Number(d)) * 86400 +
    (Number(h ?? 0) * 60 + Number(mi ?? 0)) * 60 +
    Number(s ?? 0) -
    offset;
  return [seconds, Number((frac ?? '').padEnd(6, '0').slice(0, 6))];
}

function compareInstants(a: Instant, b: Instant): number {
  return a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] - b[1];
}

/** Beyond any date either server stores: infinity sorts after, -infinity before, every timestamp. */
const INFINITY = 1n << 80n;

/** A timestamp (see timestampInstant) in microseconds since 1970-01-01 UTC, for comparing two values. */
export function timestampOrder(text: string): bigint | undefined {
  const instant = timestampInstant(text);
  if (!instant) return undefined;
  const [seconds, micros] = instant;
  if (!Number.isFinite(seconds)) return seconds > 0 ? INFINITY : -INFINITY;
  return BigInt(seconds) * 1_000_000n + BigInt(micros);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The statistics of one table as rows go by. */
export class TableTally {
  records = 0;
  readonly digest = new RowDigest();
  private keyMin: string | undefined;
  private keyMax: string | undefined;
  private newestAt: { instant: Instant; text: string } | undefined;

  constructor(
    readonly name: string | undefined,
    readonly columns: TableColumns,
  ) {}

  /** One row's key and timestamp fields, as their text (undefined when absent, NULL or too long). */
  fields(key: string | undefined, timestamp: string | undefined): void {
    if (key !== undefined && INTEGER.test(key)) {
      if (this.keyMin === undefined || compareIntegers(key, this.keyMin) < 0) this.keyMin = key;
      if (this.keyMax === undefined || compareIntegers(key, this.keyMax) > 0) this.keyMax = key;
    }
    const instant = timestamp === undefined ? undefined : timestampInstant(timestamp);
    if (instant && (!this.newestAt || compareInstants(instant, this.newestAt.instant) > 0))
      this.newestAt = { instant, text: timestamp as string };
  }

  /** Adds another block of the same table. */
  merge(other: TableTally): void {
    this.records += other.records;
    this.digest.merge(other.digest);
    if (other.keyMin !== undefined) this.fields(other.keyMin, undefined);
    if (other.keyMax !== undefined) this.fields(other.keyMax, undefined);
    if (other.newestAt) this.fields(undefined, other.newestAt.text);
  }

  count(name: string): ObjectCount {
    const { key, timestamp } = this.columns;
    return {
      name,
      records: this.records,
      checksum: this.digest.hex(),
      ...(key !== undefined && this.keyMin !== undefined && this.keyMax !== undefined
        ? { key: { column: key, min: this.keyMin, max: this.keyMax } }
        : {}),
      ...(timestamp !== undefined && this.newestAt ? { newest: { column: timestamp, value: this.newestAt.text } } : {}),
    };
  }
}

/** Sums the blocks of each named table, in order of first appearance. */
export function tallyObjects(tallies: readonly TableTally[]): ObjectCount[] {
  const byName = new Map<string, TableTally>();
  for (const tally of tallies) {
    if (tally.name === undefined) continue;
    const sum = byName.get(tally.name);
    if (sum) sum.merge(tally);
    else {
      const copy = new TableTally(tally.name, tally.columns);
      copy.merge(tally);
      byName.set(tally.name, copy);
    }
  }
  return [...byName].map(([name, tally]) => tally.count(name));
}

const FIELD_LIMIT = 64;

/**
 * Picks up to two fields of a row fed in pieces (a row may span chunks): fields are separated by
 * `separator` bytes (PostgreSQL COPY text: a tab; a value's own tabs are escaped). A field longer than
 * FIELD_LIMIT bytes is dropped (no key or timestamp is that long).
 */
export class FieldPicker {
  private index = 0;
  /** The fields' text so far (latin1: one character a byte), undefined until reached. */
  private readonly captured: [string | undefined, string | undefined] = [undefined, undefined];
  private readonly last: number;

  constructor(
    private readonly wanted: readonly [number | undefined, number | undefined],
    private readonly separator: number,
  ) {
    this.last = Math.max(wanted[0] ?? -1, wanted[1] ?? -1);
  }

  feed(bytes: Buffer, from: number, to: number): void {
    while (from < to && this.index <= this.last) {
      const found = bytes.indexOf(this.separator, from);
      const end = found === -1 || found >= to ? to : found;
      for (let slot = 0; slot < 2; slot++) {
        if (this.wanted[slot] !== this.index) continue;
        const kept = this.captured[slot] ?? '';
        if (kept.length <= FIELD_LIMIT)
          this.captured[slot] = kept + bytes.toString('latin1', from, Math.min(end, from + FIELD_LIMIT + 1));
      }
      if (end === to) return;
      this.index++;
      from = end + 1;
    }
  }

  /** The two fields' text (undefined when absent or too long), and a fresh start for the next row. */
  finish(): [string | undefined, string | undefined] {
    const result: [string | undefined, string | undefined] = [text(this.captured[0]), text(this.captured[1])];
    this.index = 0;
    this.captured[0] = undefined;
    this.captured[1] = undefined;
    return result;
  }
}

/** A field kept as latin1, as UTF-8 text (keys and timestamps are ASCII; anything else is decoded right). */
function text(kept: string | undefined): string | undefined {
  if (kept === undefined || kept.length > FIELD_LIMIT) return undefined;
  return /[\u0080-\u00ff]/.test(kept) ? Buffer.from(kept, 'latin1').toString('utf8') : kept;
}
