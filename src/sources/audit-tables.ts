import type { ObjectCount } from './source.ts';
import { integerKey, timestampOrder } from './table-stats.ts';
import { compareTables } from './verify.ts';

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
 * pure, on compareTables. Counts say how many rows are missing (a lower bound: a row deleted and
 * another inserted cancel out); a key maximum or newest timestamp past the recorded one says rows
 * were added even then.
 */
export function auditTables(recorded: ObjectCount[], live: ObjectCount[]): TableAudit {
  const comparison = compareTables(recorded, live);
  const differences: TableDifference[] = [
    ...comparison.tables.flatMap((t): TableDifference[] => {
      const difference: TableDifference = {
        name: t.name,
        recorded: t.recorded.records,
        live: t.observed.records,
        missing: Math.max(0, t.recordsDelta),
        removed: Math.max(0, -t.recordsDelta),
      };
      const [r, l] = [t.recorded, t.observed];
      if (
        t.keyEqual === false &&
        r.key &&
        l.key &&
        r.key.column === l.key.column &&
        later(l.key.max, r.key.max, integerKey)
      )
        difference.keyAdvanced = { column: l.key.column, recorded: r.key.max, live: l.key.max };
      if (
        t.newestEqual === false &&
        r.newest &&
        l.newest &&
        r.newest.column === l.newest.column &&
        later(l.newest.value, r.newest.value, timestampOrder)
      )
        difference.newerRows = { column: l.newest.column, recorded: r.newest.value, live: l.newest.value };
      const differs =
        difference.missing > 0 || difference.removed > 0 || difference.keyAdvanced || difference.newerRows;
      return differs ? [difference] : [];
    }),
    ...comparison.extra.map((name) => {
      const records = live.find((t) => t.name === name)?.records ?? 0;
      return { name, live: records, missing: records, removed: 0 };
    }),
    ...comparison.missing.map((name) => {
      const records = recorded.find((t) => t.name === name)?.records ?? 0;
      return { name, recorded: records, missing: 0, removed: records };
    }),
  ].sort((a, b) => a.name.localeCompare(b.name));
  return {
    tables: comparison.tables.length + comparison.extra.length + comparison.missing.length,
    differences,
    missingRecords: differences.reduce((sum, d) => sum + d.missing, 0),
  };
}

/** Whether `live` orders after `recorded` as `parse` reads them; undefined (unreadable) never does. */
function later(live: string, recorded: string, parse: (text: string) => bigint | undefined): boolean {
  const [a, b] = [parse(live), parse(recorded)];
  return a !== undefined && b !== undefined && a > b;
}
