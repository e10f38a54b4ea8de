import { Psql } from './client.ts';
import type { DumpContext } from './dump.ts';

/** pg_dump gave up waiting for a table lock (`--lock-wait-timeout` sets statement_timeout around LOCK TABLE). */
export function isLockTimeout(stderr: string): boolean {
  return /canceling statement due to (statement|lock) timeout/.test(stderr) && /LOCK TABLE/.test(stderr);
}

/**
 * Who holds the locks a dump waited for: every table of `database` on which another session holds
 * ACCESS EXCLUSIVE (the one mode that blocks pg_dump's ACCESS SHARE), with what the server tells
 * this user about that session (pid, user and application always; query start and state only to a
 * superuser, the same role or pg_read_all_stats). Asked right after the failure, so a holder that
 * let go meanwhile is not listed; undefined when none is found or the question itself fails.
 */
export async function describeLockHolders(context: DumpContext, database: string): Promise<string | undefined> {
  const psql = new Psql(context.tools.psql, context.connection);
  let rows: string[];
  try {
    rows = await psql.query(
      database,
      `select format('%I.%I', n.nspname, c.relname), a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),
              coalesce(to_char(a.query_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ''),
              coalesce(a.state, '')
       from pg_catalog.pg_locks l
       join pg_catalog.pg_class c on c.oid = l.relation
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       join pg_catalog.pg_stat_activity a on a.pid = l.pid
       where l.locktype = 'relation' and l.granted and l.mode = 'AccessExclusiveLock'
         and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
         and c.relkind in ('r', 'p', 'm', 'f') and a.pid <> pg_catalog.pg_backend_pid()
       order by 1, 2 limit 10`,
      { doing: `listing lock holders in database "${database}"` },
    );
  } catch {
    return undefined;
  }
  const holders: string[] = [];
  for (let i = 0; i + 5 < rows.length; i += 6) {
    const [table, pid, user, application, queryStart, state] = rows.slice(i, i + 6) as string[];
    const about = [
      `pid ${pid}`,
      user && `user ${user}`,
      application && `application ${JSON.stringify(application)}`,
      queryStart && `query started ${queryStart}`,
      state && `state ${state}`,
    ].filter(Boolean);
    holders.push(`table ${table} is locked ACCESS EXCLUSIVE by ${about.join(', ')}`);
  }
  return holders.length ? holders.join('; ') : undefined;
}

/** The `Query was: LOCK TABLE ...` detail of pg_dump's error: the tables it asked for when no holder is found. */
export function lockQuery(stderr: string): string | undefined {
  return /Query was: (LOCK TABLE [^\n]*)/.exec(stderr)?.[1]?.slice(0, 500);
}
