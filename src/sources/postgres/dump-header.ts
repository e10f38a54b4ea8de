import { Readable } from 'node:stream';

/**
 * pg_dump 17 and later start every plain dump with `SET transaction_timeout = 0;`, whatever the
 * server's version, and a server before 17 refuses that parameter: the newest pg_dump (the one the
 * image ships, to read every server) would make dumps of PostgreSQL 13-16 unrestorable into their
 * own version. That one statement of the header is rewritten into one that sets the parameter only
 * where it exists; the header ends at the first line that is not a SET, a SELECT, a comment, a psql
 * meta-command or blank, so nothing of the dumped content can be touched.
 */
const STATEMENT = 'SET transaction_timeout = 0;';
const PORTABLE =
  "SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings WHERE name = 'transaction_timeout';";
const HEADER_LINE = /^(SET |SELECT |--|\\|$)/;
const HEADER_LIMIT = 8 << 20; // past the database-state line (database-state.ts, up to 4 MiB)

export function portableHeader(data: Readable): Readable {
  return Readable.from(rewrite(data), { objectMode: false });
}

async function* rewrite(data: Readable): AsyncGenerator<Buffer> {
  let partial = ''; // the incomplete last line so far (latin1: byte-preserving; only ASCII is compared)
  let inHeader = true;
  let read = 0;
  try {
    for await (const chunk of data as AsyncIterable<Buffer>) {
      if (!inHeader) {
        yield chunk;
        continue;
      }
      const lines = (partial + chunk.toString('latin1')).split('\n');
      partial = lines.pop() ?? '';
      const end = lines.findIndex((line) => !HEADER_LINE.test(line));
      if (end !== -1) inHeader = false;
      const header = end === -1 ? lines : lines.slice(0, end);
      const out = header.map((line) => (line === STATEMENT ? PORTABLE : line));
      const rest = end === -1 ? [] : lines.slice(end);
      read += chunk.length;
      if (read > HEADER_LIMIT) inHeader = false;
      const complete = lines.length ? `${out.concat(rest).join('\n')}\n` : '';
      if (!inHeader) {
        yield Buffer.from(complete + partial, 'latin1');
        partial = '';
      } else if (complete) yield Buffer.from(complete, 'latin1');
    }
    if (partial) yield Buffer.from(inHeader && partial === STATEMENT ? PORTABLE : partial, 'latin1');
  } finally {
    if (!data.destroyed) data.destroy();
  }
}
