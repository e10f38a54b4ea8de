import type { ObjectCount } from '../source.ts';
import type { Psql } from './client.ts';

/**
 * The tables whose rows pg_dump dumps, as `c` (pg_class) and `n` (pg_namespace): ordinary tables and
 * leaf partitions (partitioned parents hold no rows of their own) outside the system schemas, minus
 * extension members other than the configuration tables an extension asks pg_dump to dump.
 */
export const DUMPED_TABLES = `
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and (not exists (select from pg_catalog.pg_depend d
                   where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
       or c.oid in (select unnest(extconfig) from pg_catalog.pg_extension))`;

const COUNT_ROWS = `
select format('select %L, count(*) from %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
${DUMPED_TABLES}
order by n.nspname, c.relname
\\gexec
`;

/** Exact `count(*)` of every table of `database` whose rows a dump holds, named `schema.table`. */
export async function countRows(psql: Psql, database: string, doing?: string): Promise<ObjectCount[]> {
  const fields = await psql.query(database, COUNT_ROWS, { doing: doing ?? `counting rows in database "${database}"` });
  const counts: ObjectCount[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2)
    counts.push({ name: fields[i] as string, records: Number(fields[i + 1]) });
  return counts;
}
