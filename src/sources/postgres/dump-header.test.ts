import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { portableHeader } from './dump-header.ts';

const read = async (chunks: string[]) => {
  const out: Buffer[] = [];
  for await (const chunk of portableHeader(Readable.from(chunks.map((c) => Buffer.from(c))))) out.push(chunk);
  return Buffer.concat(out).toString();
};

test("rewrites pg_dump 17+'s transaction_timeout in the header only, across chunk boundaries", async () => {
  const header =
    "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET statement_timeout = 0;\nSET transaction_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n";
  const body = 'CREATE TABLE public.t (x text);\nCOPY public.t (x) FROM stdin;\nSET transaction_timeout = 0;\n\\.\n';
  const out = await read([header.slice(0, 70), header.slice(70), body.slice(0, 10), body.slice(10)]);
  assert.equal(
    out.split('\n').filter((l) => l === 'SET transaction_timeout = 0;').length,
    1,
    'the COPY data line stays',
  );
  assert.match(out, /WHERE name = 'transaction_timeout';\nSELECT pg_catalog.set_config\('search_path'/);
  assert.equal(
    out.length - (header + body).length,
    "SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings WHERE name = 'transaction_timeout';"
      .length - 'SET transaction_timeout = 0;'.length,
  );
});

test('passes a dump without the statement, and a short one, through unchanged', async () => {
  const dump = "SET client_encoding = 'UTF8';\nCREATE TABLE a (é text);\n";
  assert.equal(await read([dump]), dump);
  assert.equal(await read(['SET x = 1;']), 'SET x = 1;');
});

test('the same output whatever the chunking, down to one byte per chunk', async () => {
  const dump = `-- tidemark-database-state: {"a":1}\nSET transaction_timeout = 0;\nSET x = 1;\nCREATE TABLE t (x text);\nSET transaction_timeout = 0;\n`;
  const whole = await read([dump]);
  assert.equal(await read([...dump]), whole);
  assert.equal(whole.split('SET transaction_timeout = 0;').length, 2, 'only the header statement is rewritten');
});

test('a chunk of hundreds of thousands of lines passes (no argument spreading)', async () => {
  const body = `COPY public.t (x) FROM stdin;\n${'row\n'.repeat(300_000)}\\.\n`;
  const out = await read([`SET transaction_timeout = 0;\n${body}`]);
  assert.ok(out.endsWith(body));
});
