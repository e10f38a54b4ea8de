import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientEnv, summarizeStderr, TextTail } from './client.ts';

test('the password reaches tools only as PGPASSWORD; the database only as PGDATABASE', () => {
  const env = clientEnv({ host: 'db', port: 5433, user: 'app', password: 's3cret', sslmode: 'require' }, 'a=b c');
  assert.equal(env.PGPASSWORD, 's3cret');
  assert.equal(env.PGDATABASE, 'a=b c');
  assert.equal(env.PGHOST, 'db');
  assert.equal(env.PGPORT, '5433');
  assert.equal(env.PGSSLMODE, 'require');
  assert.equal(clientEnv({ host: 'db', port: 5432, user: 'app' }).PGDATABASE, undefined);
});

test('summarizes the error lines of stderr, never echoing the password', () => {
  const stderr =
    'pg_dump: error: query failed: ERROR:  permission denied for schema app\n' +
    'pg_dump: detail: Query was: LOCK TABLE app.t IN ACCESS SHARE MODE\n';
  assert.equal(
    summarizeStderr(stderr, undefined),
    'pg_dump: error: query failed: ERROR: permission denied for schema app; pg_dump: detail: Query was: LOCK TABLE app.t IN ACCESS SHARE MODE',
  );
  const psql =
    'psql:<stdin>:25: ERROR:  role "app_owner" does not exist\n' +
    'psql:<stdin>:30: ERROR:  current transaction is aborted\nDETAIL:  not this one\n';
  assert.equal(summarizeStderr(psql, undefined), 'psql:<stdin>:25: ERROR: role "app_owner" does not exist');
  const detailed = 'psql:<stdin>:3: ERROR:  insert violates a constraint\nDETAIL:  Key (id)=(1) exists.\nHINT:  h\n';
  assert.equal(
    summarizeStderr(detailed, undefined),
    'psql:<stdin>:3: ERROR: insert violates a constraint; DETAIL: Key (id)=(1) exists.; HINT: h',
  );
  assert.equal(summarizeStderr('psql: error: bad password hunter2\n', 'hunter2'), 'psql: error: bad password ***');
  assert.equal(summarizeStderr('just noise\nmore noise\n', undefined), 'just noise; more noise');
  assert.equal(summarizeStderr('', undefined), 'no error output');
});

test('TextTail keeps only the end', () => {
  const tail = new TextTail(5);
  tail.add('hello ');
  tail.add(Buffer.from('world'));
  assert.equal(tail.toString(), 'world');
});
