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

/** Rows between carries of the digest's sum: 2^20 sums of 32-bit words stay exact in a double. */
const CARRY_EVERY = 1 << 20;

/**
 * The sum modulo 2^128 of a 128-bit hash of every row: MurmurHash3_x86_128 (seed 0) of the row's bytes,
 * its 16 output bytes read as a little-endian integer. A sum, not an xor, so two equal rows do not
 * cancel out; order-independent, so a table dumped in another physical order, or in several blocks,
 * sums the same. Murmur rather than SHA-256: computed in JavaScript, without a native call per row
 * (which cost ~4 µs a row, 20 times the rest of the scan); a checksum detects damage and loss, not forgery.
 * The four 32-bit words of the sum are added up as doubles and their carries propagated every
 * CARRY_EVERY rows (and when read), not per row.
 */
export class RowDigest {
  /** The sum's words, least significant first, each possibly past 2^32 until `carry`. */
  private w0 = 0;
  private w1 = 0;
  private w2 = 0;
  private w3 = 0;
  private uncarried = 0;
  private readonly hash = new Murmur128();

  /** A whole row: `row[start, end)`. */
  add(row: Buffer, start = 0, end = row.length): void {
    this.hash.update(row, start, end);
    this.endRow();
  }

  /** Part of a row that spans chunks, `part[start, end)`; `endRow` ends it. */
  addPart(part: Buffer, start = 0, end = part.length): void {
    this.hash.update(part, start, end);
  }

  /** Forgets the part read so far (it was not a row after all). */
  dropPart(): void {
    this.hash.reset();
  }

  endRow(): void {
    const hash = this.hash;
    hash.end();
    this.addWords(hash.h1, hash.h2, hash.h3, hash.h4);
  }

  /** Adds another digest (the same table dumped in several blocks). */
  merge(other: RowDigest): void {
    other.carry();
    this.addWords(other.w0, other.w1, other.w2, other.w3);
  }

  /** 32 lowercase hex digits. */
  hex(): string {
    this.carry();
    return [this.w3, this.w2, this.w1, this.w0].map((w) => w.toString(16).padStart(8, '0')).join('');
  }

  private addWords(w0: number, w1: number, w2: number, w3: number): void {
    this.w0 += w0;
    this.w1 += w1;
    this.w2 += w2;
    this.w3 += w3;
    if (++this.uncarried === CARRY_EVERY) this.carry();
  }

  private carry(): void {
    const TWO32 = 0x100000000;
    let carry = Math.floor(this.w0 / TWO32);
    this.w0 -= carry * TWO32;
    this.w1 += carry;
    carry = Math.floor(this.w1 / TWO32);
    this.w1 -= carry * TWO32;
    this.w2 += carry;
    carry = Math.floor(this.w2 / TWO32);
    this.w2 -= carry * TWO32;
    this.w3 += carry;
    this.w3 %= TWO32;
    this.uncarried = 0;
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

/**
 * MurmurHash3_x86_128 with seed 0 (Austin Appleby's smhasher), fed in pieces; `end` leaves the hash in
 * h1..h4 and resets (no object per row), `finish` returns it.
 */
export class Murmur128 {
  h1 = 0;
  h2 = 0;
  h3 = 0;
  h4 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private s4 = 0;
  private length = 0;
  private readonly tail = Buffer.alloc(16);
  private tailLength = 0;

  update(data: Buffer, start: number, end: number): void {
    let i = start;
    this.length += end - start;
    if (this.tailLength > 0) {
      while (this.tailLength < 16 && i < end) this.tail[this.tailLength++] = data[i++] as number;
      if (this.tailLength < 16) return;
      this.blocks(this.tail, 0, 16);
      this.tailLength = 0;
    }
    const whole = i + ((end - i) & ~15);
    if (whole > i) this.blocks(data, i, whole);
    for (i = whole; i < end; i++) this.tail[this.tailLength++] = data[i] as number;
  }

  finish(): { h1: number; h2: number; h3: number; h4: number } {
    this.end();
    return { h1: this.h1, h2: this.h2, h3: this.h3, h4: this.h4 };
  }

  /** Ends the input: the hash is then h1..h4; the state is fresh for the next. */
  end(): void {
    let h1 = this.s1;
    let h2 = this.s2;
    let h3 = this.s3;
    let h4 = this.s4;
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
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    this.h4 = h4;
    this.reset();
  }

  reset(): void {
    this.s1 = 0;
    this.s2 = 0;
    this.s3 = 0;
    this.s4 = 0;
    this.length = 0;
    this.tailLength = 0;
  }

  /** The 16-byte blocks of b[i, end), `end - i` a multiple of 16. */
  private blocks(b: Buffer, i: number, end: number): void {
    let h1 = this.s1;
    let h2 = this.s2;
    let h3 = this.s3;
    let h4 = this.s4;
    for (; i < end; i += 16) {
      const k1 =
        (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
      const k2 =
        (b[i + 4] as number) |
        ((b[i + 5] as number) << 8) |
        ((b[i + 6] as number) << 16) |
        ((b[i + 7] as number) << 24);
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
      h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
      h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
      h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
      h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
      h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
      h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
      h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
      h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
    }
    this.s1 = h1;
    this.s2 = h2;
    this.s3 = h3;
    this.s4 = h4;
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

/** What readTimestamp read (module state, so a row allocates nothing). */
let readSeconds = 0;
let readMicros = 0;
let digitsValue = 0;

/**
 * timestampInstant on bytes, for the plain forms only (no infinity, a year of at most 15 digits): true
 * with the instant in readSeconds/readMicros, false when the text is anything else (then
 * timestampInstant decides). It reads TIMESTAMP's grammar left to right, each part greedily: where the
 * regular expression would backtrack, what follows cannot match, so both reject the same texts.
 */
function readTimestamp(b: Buffer, start: number, end: number): boolean {
  let i = start;
  let n = readDigits(b, i, end, EXACT_DIGITS + 1);
  if (n < 4 || n > EXACT_DIGITS || b[i + n] !== DASH || i + n >= end) return false;
  const year = digitsValue;
  i += n + 1;
  n = readDigits(b, i, end, 2);
  if (n === 0 || i + n >= end || b[i + n] !== DASH) return false;
  const month = digitsValue;
  i += n + 1;
  n = readDigits(b, i, end, 2);
  if (n === 0) return false;
  const day = digitsValue;
  i += n;
  let clock = 0;
  let micros = 0;
  if (i + 1 < end && (b[i] === SPACE || b[i] === LETTER_T) && isDigitByte(b[i + 1] as number)) {
    n = readDigits(b, i + 1, end, 2);
    const hours = digitsValue;
    i += 1 + n;
    if (i >= end || b[i] !== COLON || readDigits(b, i + 1, end, 2) !== 2) return false;
    clock = (hours * 60 + digitsValue) * 60;
    i += 3;
    if (i < end && b[i] === COLON) {
      if (readDigits(b, i + 1, end, 2) !== 2) return false;
      clock += digitsValue;
      i += 3;
      if (i < end && b[i] === DOT) {
        n = readDigits(b, i + 1, end, 10);
        if (n === 0 || n > 9) return false;
        for (let k = 0; k < 6; k++) micros = micros * 10 + (k < n ? (b[i + 1 + k] as number) - ZERO : 0);
        i += 1 + n;
      }
    }
  }
  let offset = 0;
  if (i < end && (b[i] === PLUS || b[i] === DASH)) {
    const sign = b[i] === DASH ? -1 : 1;
    if (readDigits(b, i + 1, end, 2) !== 2) return false;
    let seconds = digitsValue * 3600;
    i += 3;
    for (const unit of OFFSET_UNITS) {
      const at = i < end && b[i] === COLON ? i + 1 : i;
      if (readDigits(b, at, end, 2) !== 2) break;
      seconds += digitsValue * unit;
      i = at + 2;
    }
    offset = sign * seconds;
  } else if (i < end && b[i] === LETTER_Z) i++;
  let bc = false;
  if (end - i === 3 && b[i] === SPACE && b[i + 1] === LETTER_B && b[i + 2] === LETTER_C) {
    bc = true;
    i += 3;
  }
  if (i !== end) return false;
  readSeconds = daysFromCivil(bc ? 1 - year : year, month, day) * 86400 + clock - offset;
  readMicros = micros;
  return true;
}

/** Up to `max` digits from b[i] (before `end`): how many, their value in digitsValue. */
function readDigits(b: Buffer, i: number, end: number, max: number): number {
  let n = 0;
  let value = 0;
  for (; n < max && i + n < end; n++) {
    const digit = (b[i + n] as number) - ZERO;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  digitsValue = value;
  return n;
}

function isDigitByte(byte: number): boolean {
  return byte >= ZERO && byte <= ZERO + 9;
}

const OFFSET_UNITS = [60, 1];
const SPACE = 0x20;
const COLON = 0x3a;
const DOT = 0x2e;
const PLUS = 0x2b;
const LETTER_T = 0x54;
const LETTER_Z = 0x5a;
const LETTER_B = 0x42;
const LETTER_C = 0x43;

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

/** Where a scanner hands a row's key and timestamp fields, as bytes `[start, end)` (valid during the call). */
export interface FieldSink {
  key(bytes: Buffer, start: number, end: number): void;
  timestamp(bytes: Buffer, start: number, end: number): void;
}

/** Digits an integer key may have to be kept as a number: below 2^53, so exact. */
const EXACT_DIGITS = 15;

/**
 * The statistics of one table as rows go by. The key range is kept as numbers while the keys are
 * plain decimal (no sign but `-`, no leading zero, up to EXACT_DIGITS digits: their text is then the
 * number's), so a row costs no string; any other integer text is kept as text and compared as before.
 */
export class TableTally implements FieldSink {
  records = 0;
  readonly digest = new RowDigest();
  /** The key range: a number (NaN when unset or kept as text), else its text. */
  private minNumber = Number.NaN;
  private maxNumber = Number.NaN;
  private minText: string | undefined;
  private maxText: string | undefined;
  /** The newest timestamp: its instant (NaN seconds when unset), its text, or its bytes when read as bytes. */
  private newestSeconds = Number.NaN;
  private newestMicros = 0;
  private newestText: string | undefined;
  private readonly newestBytes = new FieldBytes();

  constructor(
    readonly name: string | undefined,
    readonly columns: TableColumns,
  ) {}

  /** One row's key and timestamp fields, as their text (undefined when absent, NULL or too long). */
  fields(key: string | undefined, timestamp: string | undefined): void {
    if (key !== undefined) this.keyText(key);
    if (timestamp !== undefined) this.timestampText(timestamp);
  }

  key(bytes: Buffer, start: number, end: number): void {
    const value = plainInteger(bytes, start, end);
    if (Number.isNaN(value)) this.keyText(fieldText(bytes, start, end));
    else this.keyNumber(value);
  }

  timestamp(bytes: Buffer, start: number, end: number): void {
    if (!readTimestamp(bytes, start, end)) {
      this.timestampText(fieldText(bytes, start, end));
      return;
    }
    if (this.isNewer(readSeconds, readMicros)) {
      this.newest(readSeconds, readMicros, undefined);
      this.newestBytes.append(bytes, start, end);
    }
  }

  /** Adds another block of the same table. */
  merge(other: TableTally): void {
    this.records += other.records;
    this.digest.merge(other.digest);
    const min = other.keyMin();
    const max = other.keyMax();
    if (min !== undefined) this.keyText(min);
    if (max !== undefined) this.keyText(max);
    const newest = other.newestValue();
    if (newest !== undefined) this.timestampText(newest);
  }

  count(name: string): ObjectCount {
    const { key, timestamp } = this.columns;
    const min = this.keyMin();
    const max = this.keyMax();
    const newest = this.newestValue();
    return {
      name,
      records: this.records,
      checksum: this.digest.hex(),
      ...(key !== undefined && min !== undefined && max !== undefined ? { key: { column: key, min, max } } : {}),
      ...(timestamp !== undefined && newest !== undefined ? { newest: { column: timestamp, value: newest } } : {}),
    };
  }

  private keyMin(): string | undefined {
    return this.minText ?? (Number.isNaN(this.minNumber) ? undefined : String(this.minNumber));
  }

  private keyMax(): string | undefined {
    return this.maxText ?? (Number.isNaN(this.maxNumber) ? undefined : String(this.maxNumber));
  }

  private keyNumber(value: number): void {
    if (this.minText === undefined) {
      if (!(value >= this.minNumber)) this.minNumber = value; // also when unset (NaN)
    } else if (compareIntegers(String(value), this.minText) < 0) {
      this.minNumber = value;
      this.minText = undefined;
    }
    if (this.maxText === undefined) {
      if (!(value <= this.maxNumber)) this.maxNumber = value;
    } else if (compareIntegers(String(value), this.maxText) > 0) {
      this.maxNumber = value;
      this.maxText = undefined;
    }
  }

  private keyText(key: string): void {
    if (!INTEGER.test(key)) return;
    const min = this.keyMin();
    if (min === undefined || compareIntegers(key, min) < 0) {
      this.minText = key;
      this.minNumber = Number.NaN;
    }
    const max = this.keyMax();
    if (max === undefined || compareIntegers(key, max) > 0) {
      this.maxText = key;
      this.maxNumber = Number.NaN;
    }
  }

  private timestampText(timestamp: string): void {
    const instant = timestampInstant(timestamp);
    if (instant && this.isNewer(instant[0], instant[1])) this.newest(instant[0], instant[1], timestamp);
  }

  private isNewer(seconds: number, micros: number): boolean {
    // later seconds, or the same and later microseconds (±Infinity equal to themselves)
    const newest = this.newestSeconds;
    return Number.isNaN(newest) || seconds > newest || (seconds === newest && micros > this.newestMicros);
  }

  private newest(seconds: number, micros: number, text: string | undefined): void {
    this.newestSeconds = seconds;
    this.newestMicros = micros;
    this.newestText = text;
    this.newestBytes.clear();
  }

  private newestValue(): string | undefined {
    if (Number.isNaN(this.newestSeconds)) return undefined;
    return this.newestText ?? this.newestBytes.bytes.toString('latin1', 0, this.newestBytes.length);
  }
}

/**
 * The value of bytes[start, end) when it is a plain decimal integer whose text is the number's own
 * (`0`, or an optional `-`, a digit 1-9, then up to EXACT_DIGITS digits in all); NaN for anything else.
 */
function plainInteger(bytes: Buffer, start: number, end: number): number {
  const negative = bytes[start] === DASH;
  const first = negative ? start + 1 : start;
  const digits = end - first;
  if (digits < 1 || digits > EXACT_DIGITS) return Number.NaN;
  if (bytes[first] === ZERO && (digits > 1 || negative)) return Number.NaN;
  let value = 0;
  for (let i = first; i < end; i++) {
    const digit = (bytes[i] as number) - ZERO;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

const DASH = 0x2d;
const ZERO = 0x30;

/** A field's text: latin1 when it is ASCII (keys and timestamps are), else decoded as UTF-8. */
function fieldText(bytes: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) if ((bytes[i] as number) >= 0x80) return bytes.toString('utf8', start, end);
  return bytes.toString('latin1', start, end);
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
 * A field's bytes gathered across chunks, up to FIELD_LIMIT + 1 of them: a field longer than
 * FIELD_LIMIT is too long to be a key or a timestamp, and is dropped.
 */
export class FieldBytes {
  readonly bytes = Buffer.alloc(FIELD_LIMIT + 1);
  /** -1 when no field is held. */
  length = -1;

  append(from: Buffer, start: number, end: number): void {
    const bytes = this.bytes;
    let length = Math.max(this.length, 0);
    for (let i = start; i < end && length <= FIELD_LIMIT; i++) bytes[length++] = from[i] as number;
    this.length = length;
  }

  /** Holds a field (FIELD_LIMIT bytes at most). */
  get usable(): boolean {
    return this.length >= 0 && this.length <= FIELD_LIMIT;
  }

  clear(): void {
    this.length = -1;
  }
}

/**
 * Picks up to two fields of a row fed in pieces (a row may span chunks): fields are separated by
 * `separator` bytes (PostgreSQL COPY text: a tab; a value's own tabs are escaped). The fields' bytes
 * are copied into two small buffers (FieldBytes), so a row allocates nothing.
 */
export class FieldPicker {
  private index = 0;
  /** Per slot (key, timestamp): its bytes so far. */
  private readonly kept = [new FieldBytes(), new FieldBytes()] as const;
  private readonly last: number;

  constructor(
    private readonly wanted: readonly [number | undefined, number | undefined],
    private readonly separator: number,
  ) {
    this.last = Math.max(wanted[0] ?? -1, wanted[1] ?? -1);
  }

  feed(bytes: Buffer, from: number, to: number): void {
    const separator = this.separator;
    while (from < to && this.index <= this.last) {
      let end = from;
      while (end < to && bytes[end] !== separator) end++;
      if (this.wanted[0] === this.index) this.kept[0].append(bytes, from, end);
      if (this.wanted[1] === this.index) this.kept[1].append(bytes, from, end);
      if (end === to) return;
      this.index++;
      from = end + 1;
    }
  }

  /**
   * Hands the two fields (when present and not too long) to `sink` (none: the line was not a row), and
   * starts afresh for the next row.
   */
  finish(sink: FieldSink | undefined): void {
    const [key, timestamp] = this.kept;
    if (sink && key.usable) sink.key(key.bytes, 0, key.length);
    if (sink && timestamp.usable) sink.timestamp(timestamp.bytes, 0, timestamp.length);
    this.index = 0;
    key.clear();
    timestamp.clear();
  }
}
