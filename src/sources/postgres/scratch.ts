import { randomBytes } from 'node:crypto';
import type { Psql } from './client.ts';

/**
 * The databases a restore works in. `tidemark_restore_<token>` receives the dump; in mode replace the
 * target is renamed to `tidemark_restore_<token>_replaced` in the same transaction that renames the
 * scratch database into its place, and dropped afterwards. While a restore runs, a psql session of its
 * own holds the advisory lock `<token>` (64 bits), taken before the database is created and released
 * after the last of its databases is gone. So a database with this name whose lock nobody holds was
 * left by a restore that died (SIGKILL, a node lost): the next restore on the server drops it. A
 * restore still running always holds its lock, however long it takes, so it is never touched.
 */
export const SCRATCH_PREFIX = 'tidemark_restore_';
/**
 * A restore drill's database (src/agent/tasks/drill.ts): `tidemark_drill_<token>`, marked the same
 * way by the advisory lock `<token>` for as long as the drill runs.
 */
export const DRILL_PREFIX = 'tidemark_drill_';

/** Who leaves databases of each prefix behind, for the notes. */
const LEFT_BY = { [SCRATCH_PREFIX]: 'an interrupted restore', [DRILL_PREFIX]: 'an interrupted restore drill' };
export type ScratchPrefix = keyof typeof LEFT_BY;

const scratchPattern = (prefix: ScratchPrefix) => `^${prefix}[0-9a-f]{16}(_replaced)?$`;

/** The advisory lock of a token: its 16 hex digits as a bigint (psql variable :'token'). */
export const SCRATCH_LOCK_KEY = "('x' || :'token')::bit(64)::bigint";

export function scratchNames(prefix: ScratchPrefix = SCRATCH_PREFIX): {
  token: string;
  scratch: string;
  replaced: string;
} {
  const token = randomBytes(8).toString('hex');
  const scratch = `${prefix}${token}`;
  return { token, scratch, replaced: `${scratch}_replaced` };
}

/**
 * Drops the scratch databases of restores (or, by `prefix`, drills) that died, in this connection's
 * view; returns what was dropped and what could not be (another owner's, without the privilege), for
 * the result.
 */
export async function dropAbandonedScratch(
  psql: Psql,
  maintenance: string,
  server: string,
  serverVersion: number,
  prefix: ScratchPrefix = SCRATCH_PREFIX,
): Promise<string[]> {
  const leftBy = LEFT_BY[prefix];
  // pg_locks shows a bigint advisory key as its high (classid) and low (objid) 32 bits, objsubid 1.
  const abandoned = await psql.query(
    maintenance,
    `select d.datname from pg_catalog.pg_database d
      where d.datname ~ :'pattern'
        and not exists (select from pg_catalog.pg_locks l
                         where l.locktype = 'advisory' and l.objsubid = 1
                           and (l.classid::pg_catalog.int8 << 32 | l.objid::pg_catalog.int8)
                               = ('x' || substr(d.datname, ${prefix.length + 1}, 16))::bit(64)::bigint)
      order by 1`,
    { vars: { pattern: scratchPattern(prefix) }, doing: `looking for databases left by ${leftBy} on ${server}` },
  );
  const notes: string[] = [];
  for (const name of abandoned) {
    const failure = await dropScratchDatabase(psql, maintenance, name, server, serverVersion);
    notes.push(
      failure
        ? `database "${name}" left by ${leftBy} could not be dropped: ${failure}`
        : `dropped database "${name}" left by ${leftBy}`,
    );
  }
  return notes;
}

/** Drops a scratch database, ending its sessions; returns why it could not, instead of throwing. */
export async function dropScratchDatabase(
  psql: Psql,
  maintenance: string,
  name: string,
  server: string,
  serverVersion: number,
): Promise<string | undefined> {
  const drop =
    serverVersion >= 130000
      ? 'drop database if exists :"name" with (force)'
      : `select pg_catalog.pg_terminate_backend(pid) from pg_catalog.pg_stat_activity where datname = :'name';
         drop database if exists :"name"`;
  try {
    await psql.query(maintenance, drop, { vars: { name }, doing: `dropping database "${name}" on ${server}` });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
