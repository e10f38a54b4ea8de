import type { ObjectCount } from './source.ts';
import { integerKey, timestampOrder } from './table-stats.ts';

/** One table found on both sides: what the backup recorded and what was observed. */
export interface TableCheck {
  name: string;
  recorded: ObjectCount;
  observed: ObjectCount;
  /** observed.records - recorded.records (positive: rows added since, e.g. in an audit). */
  recordsDelta: number;
  /** Whether the checksums are equal; undefined unless both sides have one. */
  checksumEqual?: boolean;
  /** Whether key ranges (column, min, max as integers) are equal; undefined unless both sides have one. */
  keyEqual?: boolean;
  /** Whether newest timestamps (column, value as an instant) are equal; undefined unless both sides have one. */
  newestEqual?: boolean;
  /** Records equal and nothing compared differs. */
  ok: boolean;
}

export interface TableComparison {
  /** Every table on both sides, in the recorded order. */
  tables: TableCheck[];
  /** Recorded but not observed. */
  missing: string[];
  /** Observed but not recorded. */
  extra: string[];
  /** No table missing or extra, and every table ok. */
  ok: boolean;
}

/**
 * Compares what a backup recorded per table with what a database holds (a restored copy: everything
 * should be equal; a live source: the differences are the news). Pure; names must match exactly, so
 * give both sides the same naming (`schema.table` within one database).
 */
export function compareTables(recorded: readonly ObjectCount[], observed: readonly ObjectCount[]): TableComparison {
  const seen = new Map(observed.map((o) => [o.name, o]));
  const tables: TableCheck[] = [];
  const missing: string[] = [];
  for (const before of recorded) {
    const now = seen.get(before.name);
    if (!now) {
      missing.push(before.name);
      continue;
    }
    seen.delete(before.name);
    const checksumEqual = both(before.checksum, now.checksum, (a, b) => a === b);
    const keyEqual = both(
      before.key,
      now.key,
      (a, b) => a.column === b.column && sameValue(a.min, b.min, integerKey) && sameValue(a.max, b.max, integerKey),
    );
    const newestEqual = both(
      before.newest,
      now.newest,
      (a, b) => a.column === b.column && sameValue(a.value, b.value, timestampOrder),
    );
    tables.push({
      name: before.name,
      recorded: before,
      observed: now,
      recordsDelta: now.records - before.records,
      ...(checksumEqual === undefined ? {} : { checksumEqual }),
      ...(keyEqual === undefined ? {} : { keyEqual }),
      ...(newestEqual === undefined ? {} : { newestEqual }),
      ok: now.records === before.records && checksumEqual !== false && keyEqual !== false && newestEqual !== false,
    });
  }
  const extra = [...seen.keys()];
  return { tables, missing, extra, ok: missing.length === 0 && extra.length === 0 && tables.every((t) => t.ok) };
}

/** Equal as what they mean (`07` and `7`; one instant at two UTC offsets), else as text. */
function sameValue(a: string, b: string, parse: (text: string) => bigint | undefined): boolean {
  const x = parse(a);
  const y = parse(b);
  return x !== undefined && y !== undefined ? x === y : a === b;
}

function both<T>(a: T | undefined, b: T | undefined, equal: (a: T, b: T) => boolean): boolean | undefined {
  return a === undefined || b === undefined ? undefined : equal(a, b);
}

/**
 * What differs, in at most `limit` items (then `and N more`): `public.t: 5 rows, 7 in the backup`,
 * `public.u: content differs (checksum)`, `public.v: missing`, `public.w: not in the backup`.
 */
export function describeDifferences(comparison: TableComparison, limit = 10): string {
  const items: string[] = [];
  for (const t of comparison.tables) {
    if (t.ok) continue;
    const parts: string[] = [];
    if (t.recordsDelta !== 0) parts.push(`${t.observed.records} rows, ${t.recorded.records} in the backup`);
    if (t.checksumEqual === false) parts.push('content differs (checksum)');
    if (t.keyEqual === false)
      parts.push(
        `key ${t.observed.key?.column} ${t.observed.key?.min}..${t.observed.key?.max}, ${t.recorded.key?.min}..${t.recorded.key?.max} in the backup`,
      );
    if (t.newestEqual === false)
      parts.push(
        `newest ${t.observed.newest?.column} ${t.observed.newest?.value}, ${t.recorded.newest?.value} in the backup`,
      );
    items.push(`${t.name}: ${parts.join(', ')}`);
  }
  items.push(...comparison.missing.map((name) => `${name}: missing`));
  items.push(...comparison.extra.map((name) => `${name}: not in the backup`));
  if (items.length === 0) return 'no differences';
  const more = items.length > limit ? `; and ${items.length - limit} more` : '';
  return items.slice(0, limit).join('; ') + more;
}
