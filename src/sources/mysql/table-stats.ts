import type { ObjectCount } from '../source.ts';
import { chooseTimestampColumn } from '../table-stats.ts';
import { type Connection, quoteIdentifier, quoteString, runSql } from './client.ts';
import type { MySQLTablePlan } from './dump-rows.ts';

const INTEGER_TYPES = ['tinyint', 'smallint', 'mediumint', 'int', 'bigint'];
const TIMESTAMP_TYPES = ['timestamp', 'datetime'];

/** A table's plan, and whether its history is kept (system-versioned: its dump holds every version). */
export interface MySQLTableColumns extends MySQLTablePlan {
  versioned: boolean;
}

/**
 * The columns of every table of `database`, in order (an INSERT without a column list gives them all),
 * with its primary key when that is one integer column and its timestamp column: the one `named` by the
 * policy when the table has it as a timestamp, datetime or date column, else one chosen among its
 * timestamp and datetime columns by chooseTimestampColumn.
 */
export async function tableColumns(
  connection: Connection,
  database: string,
  named: (table: string) => string | undefined,
  context: string,
): Promise<Map<string, MySQLTableColumns>> {
  const schema = quoteString(database);
  const rows = await runSql(
    connection,
    `SELECT 'column', c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, t.TABLE_TYPE, c.ORDINAL_POSITION
       FROM information_schema.COLUMNS c JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
      WHERE c.TABLE_SCHEMA = ${schema} AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
     UNION ALL
     SELECT 'key', s.TABLE_NAME, MAX(s.COLUMN_NAME), '', '', 0 FROM information_schema.STATISTICS s
      WHERE s.TABLE_SCHEMA = ${schema} AND s.INDEX_NAME = 'PRIMARY' GROUP BY s.TABLE_NAME HAVING COUNT(*) = 1
     ORDER BY 1, 2, 6`,
    context,
  );
  const found = new Map<string, { columns: string[]; types: Map<string, string>; versioned: boolean; key?: string }>();
  for (const [kind, table = '', column = '', type = '', tableType] of rows) {
    if (kind === 'column') {
      const entry = found.get(table) ?? {
        columns: [] as string[],
        types: new Map<string, string>(),
        versioned: tableType === 'SYSTEM VERSIONED',
      };
      found.set(table, entry);
      entry.columns.push(column);
      entry.types.set(column, type.toLowerCase());
    } else {
      const entry = found.get(table);
      if (entry && INTEGER_TYPES.includes(entry.types.get(column) ?? '')) entry.key = column;
    }
  }
  const plans = new Map<string, MySQLTableColumns>();
  for (const [table, { columns, types, versioned, key }] of found) {
    const wanted = named(table);
    const timestamps = columns.filter((c) => TIMESTAMP_TYPES.includes(types.get(c) ?? ''));
    const timestamp =
      wanted === undefined
        ? chooseTimestampColumn(timestamps, undefined)
        : [...TIMESTAMP_TYPES, 'date'].includes(types.get(wanted) ?? '')
          ? wanted
          : undefined;
    plans.set(table, {
      columns,
      versioned,
      ...(key !== undefined ? { key } : {}),
      ...(timestamp !== undefined ? { timestamp } : {}),
    });
  }
  return plans;
}

/**
 * The live statistics of the tables of `plans`, by SQL: `COUNT(*)`, the key's min and max, the
 * timestamp's max, as text in the form mariadb-dump writes them (time zone UTC, as its --tz-utc
 * default dumps TIMESTAMP columns); every version of a system-versioned table when its dump holds the
 * history (`withHistory`, dump.ts dumpPlan), else its current rows. No checksums: those come from a
 * dump (MySQLSource.tableStats).
 */
export async function liveTableStats(
  connection: Connection,
  database: string,
  plans: ReadonlyMap<string, MySQLTableColumns>,
  withHistory: boolean,
  context: string,
): Promise<ObjectCount[]> {
  const tables = [...plans];
  if (tables.length === 0) return [];
  const text = (column: string | undefined, aggregate: string) =>
    column === undefined ? 'NULL' : `CAST(${aggregate}(${quoteIdentifier(column)}) AS CHAR)`;
  const query = tables
    .map(
      ([table, { key, timestamp, versioned }], i) =>
        `SELECT ${i}, COUNT(*), ${text(key, 'MIN')}, ${text(key, 'MAX')}, ${text(timestamp, 'MAX')} FROM ${quoteIdentifier(database)}.${quoteIdentifier(table)}${versioned && withHistory ? ' FOR SYSTEM_TIME ALL' : ''}`,
    )
    .join(' UNION ALL ');
  const rows = await runSql(connection, `SET time_zone = '+00:00';\n${query};`, context);
  const byIndex = new Map(rows.map((row) => [Number(row[0]), row]));
  return tables.map(([name, { key, timestamp }], i) => {
    const [, records = '0', min = 'NULL', max = 'NULL', newest = 'NULL'] = byIndex.get(i) ?? [];
    return {
      name,
      records: Number(records),
      ...(key !== undefined && min !== 'NULL' ? { key: { column: key, min, max } } : {}),
      ...(timestamp !== undefined && newest !== 'NULL' ? { newest: { column: timestamp, value: newest } } : {}),
    };
  });
}
