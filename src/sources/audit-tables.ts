import type { ObjectCount } from './source.ts';

/** One table whose live state differs from what its backup recorded. */
export interface TableDifference {
  name: string;
  /** Rows the backup holds; absent: the table is not in the backup (created since). */
  recorded?: number;
  /** Rows the live table holds; absent: the table is gone since the backup. */
  live?: number;
  /** Live rows beyond the backup's count (all of them for a table the backup lacks). */
  missing: number;
  /** Rows the backup holds beyond the live count (deleted since, or the whole table dropped). */
  removed: number;
  /** The key's live maximum is past the recorded one: rows were added, whatever the counts say. */
  keyAdvanced?: { column: string; recorded: string; live: string };
  /** The timestamp column's live newest value is past the recorded one. */
  newerRows?: { column: string; recorded: string; live: string };
}

export interface TableAudit {
  /** Tables in the backup or live, compared. */
  tables: number;
  /** Only the tables that differ, by name. */
  differences: TableDifference[];
  /** Sum of `missing`: live rows the backup does not hold. */
  missingRecords: number;
}

/**
 * Compares a live database (`live`, without checksums) with what its backup recorded (`recorded`),
 * pure. Counts say how many rows are missing (a lower bound: a row deleted and another inserted
 * cancel out); a key maximum or newest timestamp past the recorded one says rows were added even then.
 */
export function auditTables(recorded: ObjectCount[], live: ObjectCount[]): TableAudit {
  const before = new Map(recorded.map((t) => [t.name, t]));
  const now = new Map(live.map((t) => [t.name, t]));
  const names = [...new Set([...before.keys(), ...now.keys()])].sort();
  const differences: TableDifference[] = [];
  for (const name of names) {
    const r = before.get(name);
    const l = now.get(name);
    const difference: TableDifference = {
      name,
      ...(r ? { recorded: r.records } : {}),
      ...(l ? { live: l.records } : {}),
      missing: Math.max(0, (l?.records ?? 0) - (r?.records ?? 0)),
      removed: Math.max(0, (r?.records ?? 0) - (l?.records ?? 0)),
    };
    if (r?.key && l?.key && r.key.column === l.key.column && isLater(l.key.max, r.key.max))
      difference.keyAdvanced = { column: l.key.column, recorded: r.key.max, live: l.key.max };
    if (r?.newest && l?.newest && r.newest.column === l.newest.column && isLater(l.newest.value, r.newest.value))
      difference.newerRows = { column: l.newest.column, recorded: r.newest.value, live: l.newest.value };
    const differs =
      !r || !l || difference.missing > 0 || difference.removed > 0 || difference.keyAdvanced || difference.newerRows;
    if (differs) differences.push(difference);
  }
  return {
    tables: names.length,
    differences,
    missingRecords: differences.reduce((sum, d) => sum + d.missing, 0),
  };
}

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i;
/** Dates and times as dumps write them: 2026-01-01, 2026-01-01 10:00:00.5+02, with T or a space. */
const TIME = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[-+]\d{2}(:?\d{2})?)?$/;

/**
 * Whether `live` comes after `recorded`, both as the dump's text of a value: integers (any size) and
 * decimals by value, times by instant, anything else by text.
 */
export function isLater(live: string, recorded: string): boolean {
  if (INTEGER.test(live) && INTEGER.test(recorded)) return BigInt(live) > BigInt(recorded);
  if (DECIMAL.test(live) && DECIMAL.test(recorded)) return Number(live) > Number(recorded);
  if (TIME.test(live) && TIME.test(recorded)) return instant(live) > instant(recorded);
  return live > recorded;
}

/** A dump's time text as milliseconds; one without a zone is read as UTC (both sides alike). */
function instant(text: string): number {
  if (text.length === 10) return Date.parse(`${text}T00:00:00Z`);
  const iso = text.replace(' ', 'T').replace(/([-+]\d{2})$/, '$1:00');
  return Date.parse(/(Z|[-+]\d{2}:?\d{2})$/.test(iso) ? iso : `${iso}Z`);
}
