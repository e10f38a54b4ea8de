import { type Connection, quoteString, runSql } from './client.ts';

/**
 * mariadb-dump cannot set its session's lock_wait_timeout (no init command; the server's default is a
 * day), so a table held by LOCK TABLES or an open DDL stalls a dump for that long. This watch polls the
 * process list while a dump runs; once a session of the dump's user, opened after the dump started,
 * has waited in `database` for a metadata lock longer than `timeoutSeconds`, it notes the table and the
 * sessions that may hold the lock, and kills that query: the dump fails at once, and failure() says why.
 * Without the PROCESS privilege the list shows only the user's own sessions: then no holder is named.
 */
export interface LockWatch {
  /** Why the dump was stopped, once it was. */
  failure(): string | undefined;
  stop(): void;
}

export async function watchLocks(connection: Connection, database: string, timeoutSeconds: number): Promise<LockWatch> {
  const [[first] = []] = await runSql(connection, 'SELECT CONNECTION_ID()', `watching locks in ${database}`);
  const after = Number(first);
  let failure: string | undefined;
  let stopped = false;
  const interval = Math.min(5, Math.max(1, Math.floor(timeoutSeconds / 4))) * 1000;
  const poll = async () => {
    const rows = await runSql(
      connection,
      `SELECT ID, TIME, STATE, IFNULL(INFO, ''), USER, HOST FROM information_schema.PROCESSLIST
       WHERE DB = ${quoteString(database)} AND ID <> CONNECTION_ID() ORDER BY ID`,
      `watching locks in ${database}`,
    );
    const waiting = rows.find(
      ([id, time, state, , user]) =>
        Number(id) > after &&
        user === connection.user &&
        state === 'Waiting for table metadata lock' &&
        Number(time) >= timeoutSeconds,
    );
    if (!waiting || stopped) return;
    const [id, , , info] = waiting;
    const table = /\bFROM\s+(`(?:[^`]|``)+`(?:\.`(?:[^`]|``)+`)?)/i.exec(info ?? '')?.[1] ?? info?.slice(0, 200);
    const holders = rows
      .filter(([other, , state]) => other !== id && !/^Waiting for/.test(state ?? ''))
      .slice(0, 10)
      .map(
        ([other, time, state, query, user, host]) =>
          `id ${other} (user ${user}@${(host ?? '').replace(/:\d+$/, '')}, ${time} s${state ? ` ${state}` : ''}${query ? `: ${query.replace(/\s+/g, ' ').slice(0, 120)}` : ''})`,
      );
    failure = `waited ${timeoutSeconds} s for a metadata lock on table ${table} and gave up${
      holders.length
        ? `; sessions in ${database} that may hold it: ${holders.join('; ')}`
        : '; the server shows no other session in it to this user (the holder needs the PROCESS privilege to be seen)'
    }; end that session or raise the lock wait timeout`;
    await runSql(connection, `KILL QUERY ${Number(id)}`, `stopping the dump of ${database}`);
  };
  const loop = (async () => {
    // Nothing can have waited longer than the timeout before the timeout: the first look is then.
    let wait = timeoutSeconds * 1000;
    while (!stopped && failure === undefined) {
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
      wait = interval;
      if (!stopped) await poll().catch(() => undefined); // a failed poll must not fail a healthy dump
    }
  })();
  loop.catch(() => undefined);
  return {
    failure: () => failure,
    stop: () => {
      stopped = true;
    },
  };
}
