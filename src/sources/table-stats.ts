import { createHash, type Hash, hash } from 'node:crypto';
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
 * The sum modulo 2^128 of a 128-bit hash of every row (the first 16 bytes of SHA-256 of the row's
 * bytes, big-endian). A sum, not an xor, so two equal rows do not cancel out; order-independent, so a
 * table dumped in another physical order, or in several blocks, sums the same.
 */
export class RowDigest {
  private readonly words = new Uint32Array(DIGEST_WORDS);
  private partial: Hash | undefined;

  /** A whole row. */
  add(row: Buffer): void {
    this.addHash(hash('sha256', row, 'buffer') as unknown as Buffer);
  }

  /** Part of a row that spans chunks; `endRow` ends it. */
  addPart(part: Buffer): void {
    this.partial ??= createHash('sha256');
    this.partial.update(part);
  }

  /** Forgets the part read so far (it was not a row after all). */
  dropPart(): void {
    this.partial = undefined;
  }

  endRow(): void {
    this.addHash((this.partial ?? createHash('sha256')).digest());
    this.partial = undefined;
  }

  /** Adds another digest (the same table dumped in several blocks). */
  merge(other: RowDigest): void {
    this.addWords(other.words);
  }

  /** 32 lowercase hex digits. */
  hex(): string {
    return [...this.words].map((w) => w.toString(16).padStart(8, '0')).join('');
  }

  private addHash(digest: Buffer): void {
    const words = new Uint32Array(DIGEST_WORDS);
    for (let i = 0; i < DIGEST_WORDS; i++) words[i] = digest.readUInt32BE(i * 4);
    this.addWords(words);
  }

  private addWords(words: Uint32Array): void {
    let carry = 0;
    for (let i = DIGEST_WORDS - 1; i >= 0; i--) {
      const sum = (this.words[i] as number) + (words[i] as number) + carry;
      this.words[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
  }
}

/** An integer as its decimal text (optional sign, digits), or undefined (NULL, not an integer). */
export function integerKey(text: string): bigint | undefined {
  return /^[+-]?\d{1,40}$/.test(text) ? BigInt(text) : undefined;
}

const TIMESTAMP =
  /^(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?( BC)?$/;
const MICROS_PER_DAY = 86_400_000_000n;
/** Beyond any date either server stores: infinity sorts after, -infinity before, every timestamp. */
const INFINITY = 1n << 80n;

/**
 * A timestamp or date as the dump writes it (PostgreSQL ISO style with an optional UTC offset and ` BC`,
 * `infinity`; MariaDB `YYYY-MM-DD HH:MM:SS[.ffffff]`, zero dates included), in microseconds since
 * 1970-01-01 UTC, so values compare as instants; undefined for anything else.
 */
export function timestampOrder(text: string): bigint | undefined {
  if (text === 'infinity') return INFINITY;
  if (text === '-infinity') return -INFINITY;
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os, bc] = m;
  let year = BigInt(y as string);
  if (bc) year = 1n - year;
  const micros =
    daysFromCivil(year, BigInt(mo as string), BigInt(d as string)) * MICROS_PER_DAY +
    ((BigInt(h ?? '0') * 60n + BigInt(mi ?? '0')) * 60n + BigInt(s ?? '0')) * 1_000_000n +
    BigInt((frac ?? '').padEnd(6, '0').slice(0, 6) || '0');
  const offset = sign
    ? (sign === '-' ? -1n : 1n) * ((BigInt(oh as string) * 60n + BigInt(om ?? '0')) * 60n + BigInt(os ?? '0'))
    : 0n;
  return micros - offset * 1_000_000n;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: bigint, month: bigint, day: bigint): bigint {
  const y = month <= 2n ? year - 1n : year;
  const era = (y >= 0n ? y : y - 399n) / 400n;
  const yoe = y - era * 400n;
  const doy = (153n * (month > 2n ? month - 3n : month + 9n) + 2n) / 5n + day - 1n;
  const doe = yoe * 365n + yoe / 4n - yoe / 100n + doy;
  return era * 146097n + doe - 719468n;
}

/** The statistics of one table as rows go by. */
export class TableTally {
  records = 0;
  readonly digest = new RowDigest();
  private keyMin: { value: bigint; text: string } | undefined;
  private keyMax: { value: bigint; text: string } | undefined;
  private newestAt: { value: bigint; text: string } | undefined;

  constructor(
    readonly name: string | undefined,
    readonly columns: TableColumns,
  ) {}

  /** One row's key and timestamp fields, as their text (undefined when absent, NULL or too long). */
  fields(key: string | undefined, timestamp: string | undefined): void {
    const k = key === undefined ? undefined : integerKey(key);
    if (k !== undefined) {
      if (!this.keyMin || k < this.keyMin.value) this.keyMin = { value: k, text: key as string };
      if (!this.keyMax || k > this.keyMax.value) this.keyMax = { value: k, text: key as string };
    }
    const t = timestamp === undefined ? undefined : timestampOrder(timestamp);
    if (t !== undefined && (!this.newestAt || t > this.newestAt.value))
      this.newestAt = { value: t, text: timestamp as string };
  }

  /** Adds another block of the same table. */
  merge(other: TableTally): void {
    this.records += other.records;
    this.digest.merge(other.digest);
    if (other.keyMin) this.fields(other.keyMin.text, undefined);
    if (other.keyMax) this.fields(other.keyMax.text, undefined);
    if (other.newestAt) this.fields(undefined, other.newestAt.text);
  }

  count(name: string): ObjectCount {
    const { key, timestamp } = this.columns;
    return {
      name,
      records: this.records,
      checksum: this.digest.hex(),
      ...(key !== undefined && this.keyMin && this.keyMax
        ? { key: { column: key, min: this.keyMin.text, max: this.keyMax.text } }
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
  private readonly captured: [number[] | undefined, number[] | undefined] = [undefined, undefined];

  constructor(
    private readonly wanted: readonly [number | undefined, number | undefined],
    private readonly separator: number,
  ) {}

  get needed(): boolean {
    return this.wanted[0] !== undefined || this.wanted[1] !== undefined;
  }

  feed(bytes: Buffer, from: number, to: number): void {
    while (from < to) {
      const found = bytes.indexOf(this.separator, from);
      const end = found === -1 || found >= to ? to : found;
      for (let slot = 0; slot < 2; slot++) {
        if (this.wanted[slot] !== this.index) continue;
        const kept = this.captured[slot] ?? [];
        this.captured[slot] = kept;
        for (let i = from; i < end && kept.length <= FIELD_LIMIT; i++) kept.push(bytes[i] as number);
      }
      if (end === to) return;
      this.index++;
      from = end + 1;
    }
  }

  /** The two fields' text (undefined when absent or too long), and a fresh start for the next row. */
  finish(): [string | undefined, string | undefined] {
    const text = (slot: 0 | 1) => {
      const kept = this.captured[slot];
      return kept === undefined || kept.length > FIELD_LIMIT ? undefined : Buffer.from(kept).toString('utf8');
    };
    const result: [string | undefined, string | undefined] = [text(0), text(1)];
    this.index = 0;
    this.captured[0] = undefined;
    this.captured[1] = undefined;
    return result;
  }
}
