import type { Psql } from './client.ts';

/**
 * Every object a user made in a database, grouped by kind (pg_identify_object's type: table, function,
 * type, schema, extension, large object, publication, event trigger, default acl, ...), counted, with
 * the first three of each kind by name.
 *
 * Generic rather than a list of kinds: a database created from template0 or a stock template1 holds
 * only objects with OIDs below 16384 (FirstNormalObjectId, assigned by initdb); everything with a
 * higher OID, in every per-database catalog that has OIDs, was made later; so are the database's
 * subscriptions (kept in a shared catalog). Large objects count whatever their OID (lo_create takes one). Left out: parts of another object (an index, a column
 * default, a table's row type, an array type, a partition; pg_depend types a, i, e), which is listed
 * itself; enum labels (part of their type); temporary schemas and what they hold (they end with
 * their session); a `public` schema recreated after being dropped.
 */
const USER_OBJECTS = `
select format($q$
  select o.type, o.count, o.identity from
         (select i.type, i.identity, row_number() over (partition by i.type order by i.identity) as rank,
                 count(*) over (partition by i.type) as count
            from (%s) objects (classid, objid)
            cross join lateral pg_catalog.pg_identify_object(objects.classid, objects.objid, 0) i
           where not exists (select from pg_catalog.pg_depend d
                              where d.classid = objects.classid and d.objid = objects.objid
                                and d.deptype in ('a', 'i', 'e')
                                and (d.refclassid, d.refobjid) <> (d.classid, d.objid))
             and coalesce(i.schema, '') !~ '^pg_(toast_)?temp_'
             and not (i.type = 'schema' and (i.identity ~ '^pg_(toast_)?temp_' or i.identity = 'public'))) o
   where o.rank <= 3 order by o.type, o.rank$q$,
  string_agg(format('select %L::pg_catalog.regclass::pg_catalog.oid, oid from pg_catalog.%I where oid >= 16384',
                    c.relname, c.relname), ' union all ')
    || ' union all select ''pg_catalog.pg_largeobject''::pg_catalog.regclass::pg_catalog.oid, oid from pg_catalog.pg_largeobject_metadata'
    || ' union all select ''pg_catalog.pg_subscription''::pg_catalog.regclass::pg_catalog.oid, oid from pg_catalog.pg_subscription'
    || ' where subdbid = (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database())')
  from pg_catalog.pg_class c
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'oid'
 where c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace and c.relkind = 'r' and not c.relisshared
   and c.relname not in ('pg_enum', 'pg_largeobject_metadata', 'pg_largeobject')
\\gexec
`;

export interface UserObjects {
  /** e.g. `function`, `large object`. */
  kind: string;
  count: number;
  /** The first three, as pg_identify_object names them (`app.f(integer)`). */
  examples: string[];
}

export async function userObjects(psql: Psql, database: string, doing: string): Promise<UserObjects[]> {
  const fields = await psql.query(database, USER_OBJECTS, { doing });
  const found = new Map<string, UserObjects>();
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const kind = fields[i] as string;
    const objects = found.get(kind) ?? { kind, count: Number(fields[i + 1]), examples: [] };
    objects.examples.push(fields[i + 2] as string);
    found.set(kind, objects);
  }
  return [...found.values()];
}

/** `2 functions (app.f(), app.g(integer)), 1 large object (16400), 7 tables (a, b, c, ...)`. */
export function describeUserObjects(found: UserObjects[]): string {
  return found
    .map(({ kind, count, examples }) => {
      const more = count > examples.length ? ', ...' : '';
      return `${count} ${kind}${count === 1 ? '' : 's'} (${examples.join(', ')}${more})`;
    })
    .join(', ');
}
