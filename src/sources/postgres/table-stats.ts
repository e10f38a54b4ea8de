import type { ObjectCount } from '../source.ts';
import { chooseTimestampColumn, type TableColumns } from '../table-stats.ts';
import type { Psql } from './client.ts';
import { DUMPED_TABLES } from './row-counts.ts';

// Per dumped table (schema, name): a row naming it, its single-column integer primary key, its
// timestamp and date columns.
const TABLE_COLUMNS = `
with dumped as (select c.oid, n.nspname, c.relname ${DUMPED_TABLES})
select d.nspname, d.relname, 'table', '' from dumped d
union all
select d.nspname, d.relname, 'key', a.attname from dumped d
  join pg_catalog.pg_index i on i.indrelid = d.oid and i.indisprimary and i.indnatts = 1
  join pg_catalog.pg_attribute a on a.attrelid = d.oid and a.attnum = i.indkey[0]
 where a.atttypid in ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype)
union all
select d.nspname, d.relname, case when a.atttypid = 'pg_catalog.date'::pg_catalog.regtype then 'date' else 'timestamp' end, a.attname
  from dumped d
  join pg_catalog.pg_attribute a on a.attrelid = d.oid and a.attnum > 0 and not a.attisdropped
 where a.atttypid in ('pg_catalog.timestamp'::pg_catalog.regtype, 'pg_catalog.timestamptz'::pg_catalog.regtype,
                      'pg_catalog.date'::pg_catalog.regtype)
order by 1, 2, 3, 4`;

/** What to read of a table, and its schema and name apart (either may hold a dot). */
export interface PostgresTableColumns extends TableColumns {
  schema: string;
  table: string;
}

/**
 * The columns to read per table of `database` (`schema.table`): its primary key when that is one
 * integer column (smallint, integer, bigint), and its timestamp column: the one `named` by the policy
 * when the table has it as a timestamp, timestamptz or date column, else one chosen among its
 * timestamp and timestamptz columns by chooseTimestampColumn.
 */
export async function tableColumns(
  psql: Psql,
  database: string,
  named: (table: string) => string | undefined,
  doing: string,
): Promise<Map<string, PostgresTableColumns>> {
  const fields = await psql.query(database, TABLE_COLUMNS, { doing });
  const found = new Map<
    string,
    { schema: string; table: string; key?: string; timestamps: string[]; dates: string[] }
  >();
  for (let i = 0; i + 3 < fields.length; i += 4) {
    const [schema, table, kind, column] = fields.slice(i, i + 4) as [string, string, string, string];
    const name = `${schema}.${table}`;
    const entry = found.get(name) ?? { schema, table, timestamps: [], dates: [] };
    found.set(name, entry);
    if (kind === 'key') entry.key = column;
    else if (kind === 'timestamp') entry.timestamps.push(column);
    else if (kind === 'date') entry.dates.push(column);
  }
  const plans = new Map<string, PostgresTableColumns>();
  for (const [name, { schema, table, key, timestamps, dates }] of found) {
    const wanted = named(name);
    const timestamp =
      wanted === undefined
        ? chooseTimestampColumn(timestamps, undefined)
        : timestamps.includes(wanted) || dates.includes(wanted)
          ? wanted
          : undefined;
    plans.set(name, {
      schema,
      table,
      ...(key !== undefined ? { key } : {}),
      ...(timestamp !== undefined ? { timestamp } : {}),
    });
  }
  return plans;
}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The live statistics of the tables of `plans`, by SQL: `count(*)`, the key's min and max, the
 * timestamp's max, as text in the form pg_dump writes them (DateStyle ISO, the session's time zone).
 * No checksums: those come from a dump (PostgresSource.tableStats).
 */
export async function liveTableStats(
  psql: Psql,
  database: string,
  plans: ReadonlyMap<string, PostgresTableColumns>,
  doing: string,
): Promise<ObjectCount[]> {
  const tables = [...plans];
  if (tables.length === 0) return [];
  const selects = tables.map(([, { schema, table, key, timestamp }]) => {
    const k = key === undefined ? 'null' : quoteIdentifier(key);
    const t = timestamp === undefined ? 'null' : quoteIdentifier(timestamp);
    return `select count(*), min(${k})::text, max(${k})::text, max(${t})::text from ${quoteIdentifier(schema)}.${quoteIdentifier(table)};`;
  });
  const fields = await psql.query(database, `set datestyle = iso;\n${selects.join('\n')}`, { doing });
  return tables.map(([name, { key, timestamp }], i) => {
    const [records, min, max, newest] = fields.slice(i * 4, i * 4 + 4) as [string, string, string, string];
    return {
      name,
      records: Number(records),
      ...(key !== undefined && min !== '' ? { key: { column: key, min, max } } : {}),
      ...(timestamp !== undefined && newest !== '' ? { newest: { column: timestamp, value: newest } } : {}),
    };
  });
}
