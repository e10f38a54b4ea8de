import { randomBytes } from 'node:crypto';
import { TidemarkError } from '../../errors.ts';
import {
  type Connection,
  findTool,
  quoteIdentifier,
  quoteString,
  runSql,
  startTool,
  type ToolProcess,
} from './client.ts';

/**
 * Scratch databases: a restore loads into `tidemark_restore_<12 hex>` (and, in mode replace, moves the
 * target's old tables to `tidemark_restore_<12 hex>_replaced` for the swap). The restore holds the named
 * lock `tidemark_restore_<12 hex>` from before it creates them until it is done, and the swap's session
 * `tidemark_restore_<12 hex>_swap` while it runs (it outlives an agent killed meanwhile); a scratch
 * database whose locks nobody holds belongs to a restore that was killed, and the next restore drops it.
 */
export const SCRATCH_PREFIX = 'tidemark_restore_';
/**
 * A restore drill's database (src/agent/tasks/drill.ts): `tidemark_drill_<12 hex>`, its lock of the
 * same name held for as long as the drill runs.
 */
export const DRILL_PREFIX = 'tidemark_drill_';

/** Who leaves databases of each prefix behind, for the notes. */
const LEFT_BY = { [SCRATCH_PREFIX]: 'an interrupted restore', [DRILL_PREFIX]: 'an interrupted restore drill' };
export type ScratchPrefix = keyof typeof LEFT_BY;

const scratchName = (prefix: ScratchPrefix) => new RegExp(`^${prefix}([0-9a-f]{12})(_replaced)?$`);

/** A scratch database name, its lock held by a session of its own until `release`. */
export interface ScratchLock {
  readonly name: string;
  /** The database the old tables of a replaced target move to. */
  readonly replaced: string;
  /** The lock the swap's own session takes first, so its scratch databases stay while it runs, whoever else died. */
  readonly swapLock: string;
  release(): Promise<void>;
}

export async function takeScratchLock(
  connection: Connection,
  context: string,
  prefix: ScratchPrefix = SCRATCH_PREFIX,
): Promise<ScratchLock> {
  const name = `${prefix}${randomBytes(6).toString('hex')}`;
  const session: ToolProcess = startTool(connection, findTool('client'), [
    '--batch',
    '--unbuffered',
    '--skip-column-names',
    '--connect-timeout=10',
  ]);
  let output = '';
  session.child.stdout.setEncoding('utf8');
  const locked = new Promise<boolean>((resolve) => {
    session.child.stdout.on('data', (text: string) => {
      output += text;
      if (output.includes('\n')) resolve(output.trim() === '1');
    });
    void session.exited.then(() => resolve(false));
  });
  // The session stays open (stdin not ended) and so keeps the lock; if this process dies, stdin closes,
  // the client exits and the server releases the lock.
  session.child.stdin.write(`SELECT GET_LOCK(${quoteString(name)}, 0);\n`);
  if (!(await locked)) {
    session.child.stdin.end();
    await session.exited.catch(() => {});
    throw new TidemarkError(
      'SourceUnavailable',
      `${context}: cannot take the restore lock ${name}: ${session.stderrError()}`,
    );
  }
  return {
    name,
    replaced: `${name}_replaced`,
    swapLock: `${name}_swap`,
    async release() {
      session.child.stdin.end();
      await session.exited.catch(() => {});
    },
  };
}

/**
 * Drops scratch databases (and the grants on them) of restores that no longer run: their locks are free.
 * A restore running right now holds its lock, so its scratch database stays. Returns what it did, for the
 * restore's warnings: one that cannot be dropped (the restoring user lacks the right) is reported, never
 * a reason to refuse the restore.
 */
export async function removeAbandonedScratch(
  connection: Connection,
  context: string,
  prefix: ScratchPrefix = SCRATCH_PREFIX,
): Promise<string[]> {
  const leftBy = LEFT_BY[prefix];
  const pattern = scratchName(prefix);
  const rows = await runSql(
    connection,
    `SELECT SCHEMA_NAME, IS_FREE_LOCK(id) AND IS_FREE_LOCK(CONCAT(id, '_swap'))
     FROM (SELECT SCHEMA_NAME, CONCAT(${quoteString(prefix)}, SUBSTRING(SCHEMA_NAME, ${prefix.length + 1}, 12)) AS id
     FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ${quoteString(`${prefix.replaceAll('_', '\\_')}%`)}) s`,
    context,
  );
  const notes: string[] = [];
  for (const [name, free] of rows) {
    if (!name || !pattern.test(name) || free !== '1') continue;
    await dropScratch(connection, name, `${context}: removing ${name}, left by ${leftBy}`).then(
      () => notes.push(`dropped database "${name}" left by ${leftBy}`),
      (error: Error) => notes.push(error.message),
    );
  }
  return notes;
}

/** Drops a scratch database and every database-level grant on it. */
export async function dropScratch(connection: Connection, name: string, context: string): Promise<void> {
  const grants = await runSql(
    connection,
    `SELECT User, Host FROM mysql.db WHERE Db = ${quoteString(grantPattern(name))}`,
    context,
  ).catch(() => []); // without access to mysql.db there were no grants made by us either
  const revokes = grants.map(
    ([user, host]) =>
      `REVOKE ALL PRIVILEGES ON ${quoteIdentifier(grantPattern(name))}.* FROM ${quoteIdentifier(user ?? '')}@${quoteIdentifier(host ?? '')};`,
  );
  await runSql(connection, `${revokes.join(' ')} DROP DATABASE IF EXISTS ${quoteIdentifier(name)};`, context);
}

/** The database pattern of a grant on exactly this database (`_` is a wildcard in grants). */
export function grantPattern(database: string): string {
  return database.replaceAll('_', '\\_');
}
