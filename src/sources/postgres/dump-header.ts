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
const HEADER_LIMIT = 64 * 1024;

export function portableHeader(data: Readable): Readable {
  return Readable.from(rewrite(data), { objectMode: false });
}

async function* rewrite(data: Readable): AsyncGenerator<Buffer> {
  let header = '';
  let done = false;
  try {
    for await (const chunk of data as AsyncIterable<Buffer>) {
      if (done) {
        yield chunk;
        continue;
      }
      header += chunk.toString('latin1'); // byte-preserving; only ASCII lines are compared
      const lines = header.split('\n');
      const partial = lines.pop() ?? '';
      const end = lines.findIndex((line) => !HEADER_LINE.test(line));
      if (end === -1 && header.length < HEADER_LIMIT) {
        header = lines.length ? `${lines.join('\n')}\n${partial}` : partial;
        continue;
      }
      done = true;
      const upTo = end === -1 ? lines.length : end;
      const rewritten = lines.slice(0, upTo).map((line) => (line === STATEMENT ? PORTABLE : line));
      yield Buffer.from([...rewritten, ...lines.slice(upTo), partial].join('\n'), 'latin1');
    }
    if (!done)
      yield Buffer.from(
        header
          .split('\n')
          .map((line) => (line === STATEMENT ? PORTABLE : line))
          .join('\n'),
        'latin1',
      );
  } finally {
    if (!data.destroyed) data.destroy();
  }
}
