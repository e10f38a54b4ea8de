// Row counting from the pg_dump stream (R-BACKUP: per-object record counts in the dump's snapshot).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CopyCounter, parseCopyTarget } from './copy-counter.ts';

const header = (name: string, schema: string) =>
  `--\n-- Data for Name: ${name}; Type: TABLE DATA; Schema: ${schema}; Owner: postgres\n--\n\n`;

// Shaped like pg_dump 15's plain output: a function body holding a COPY, then data of three tables.
const dump = [
  "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET client_encoding = 'UTF8';\n\n",
  '--\n-- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres\n--\n\n',
  'CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE plpgsql\n    AS $$\nbegin\n',
  'COPY public.decoy (a) FROM stdin;\nnot a row\n\\.\nend $$;\n\n',
  header('orders', 'app'),
  'COPY app.orders (id, note) FROM stdin;\n',
  '1\tplain\n',
  '2\ta\\\\.b\\nc\n', // a value holding `\.` and a newline, escaped
  '3\t\\\\.\n', // a value that is exactly `\.`: escaped as `\\.`, not a terminator
  '4\t\\N\n',
  '\\.\n\n\n',
  header('empty', 'public'),
  'COPY public.empty  FROM stdin;\n\\.\n\n\n',
  header('Ta ble', 'My "Sch'),
  'COPY "My ""Sch"."Ta ble" (id, "we;ird") FROM stdin;\n1\tx\n2\ty\n\\.\n\n\n',
  "--\n-- Name: s; Type: SEQUENCE SET; Schema: public; Owner: postgres\n--\n\nSELECT pg_catalog.setval('public.s', 42, true);\n",
  '\\unrestrict abc\n',
].join('');

const expected = [
  { name: 'app.orders', records: 4 },
  { name: 'public.empty', records: 0 },
  { name: 'My "Sch.Ta ble', records: 2 },
];

function count(chunks: Buffer[]): CopyCounter {
  const counter = new CopyCounter();
  for (const chunk of chunks) counter.write(chunk);
  counter.end();
  return counter;
}

describe('CopyCounter', () => {
  test('counts the rows of each table, empty tables included, ignoring COPY inside function bodies', () => {
    const counter = count([Buffer.from(dump)]);
    assert.deepEqual(counter.objects(), expected);
    assert.deepEqual(counter.issues(), []);
  });

  test('gives the same counts whatever the chunk boundaries', () => {
    const bytes = Buffer.from(dump);
    for (let size = 1; size <= 17; size++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
      assert.deepEqual(count(chunks).objects(), expected, `chunks of ${size} bytes`);
    }
    for (let split = 0; split <= bytes.length; split++) {
      const counts = count([bytes.subarray(0, split), bytes.subarray(split)]).objects();
      assert.deepEqual(counts, expected, `split at ${split}`);
    }
  });

  test('counts rows that span many chunks once', () => {
    const long = 'x'.repeat(3 * 1024 * 1024);
    const text = `${header('big', 'public')}COPY public.big (v) FROM stdin;\n${long}\n${long}\n\\.\n`;
    const bytes = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 65536) chunks.push(bytes.subarray(at, at + 65536));
    assert.deepEqual(count(chunks).objects(), [{ name: 'public.big', records: 2 }]);
  });

  test('a line that starts with `\\.` but goes on is a row, not the end', () => {
    const text = `${header('t', 'public')}COPY public.t (v) FROM stdin;\n\\.x\n\\.\n`;
    assert.deepEqual(count([Buffer.from(text)]).objects(), [{ name: 'public.t', records: 1 }]);
  });

  test('reports a dump that ends inside a table', () => {
    const counter = count([Buffer.from(`${header('t', 'public')}COPY public.t (v) FROM stdin;\n1\n2`)]);
    assert.deepEqual(counter.objects(), []);
    assert.deepEqual(counter.issues(), ['the dump ended inside the data of public.t']);
  });
});

describe('CopyCounter against hostile content', () => {
  // Content a tenant controls, as pg_dump prints it: nothing in it may start, end or hide a COPY block.
  const forged = (table: string) =>
    `\n--\n-- Data for Name: ${table}; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nCOPY public.${table} (a) FROM stdin;\n1\n2\n\\.\n`;
  const hostile = [
    'SET standard_conforming_strings = on;\n',
    `COMMENT ON TABLE public.t IS '${forged('in_comment')}it''s';\n`,
    `COMMENT ON COLUMN public.t.a IS E'it\\'s${forged('in_e_string')}';\n`,
    `CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql AS $_$ $$ ${forged('in_dollar')} $$ $_$;\n`,
    `CREATE FUNCTION public.g() RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT 1;\n SELECT CASE WHEN true THEN 1 END;\nEND;\n`,
    `/* nested /* comment */ ${forged('in_block_comment')} */\n`,
    `-- COPY public.in_line_comment (a) FROM stdin;\n`,
    'SET standard_conforming_strings = off;\n',
    `COMMENT ON TABLE public.t IS 'back\\'slash ${forged('in_old_string')}';\n`,
    'SET standard_conforming_strings = on;\n',
    'COPY public."new\nline" (id) FROM stdin;\n1\n2\n\\.\n',
    `COPY public."it's" (a) FROM stdin;\n1\n\\.\n`,
    'COPY public."\\." ("\\.") FROM stdin;\n\\\\.\n\\\\.\n\\.\n',
    'COPY public."-- Data for Name: x; Type: TABLE DATA;" (a) FROM stdin;\n1\n\\.\n',
    'COPY public."a;b$$c" (a) FROM stdin;\n1\n2\n3\n\\.\n',
  ].join('');
  const real = [
    { name: 'public.new\nline', records: 2 },
    { name: "public.it's", records: 1 },
    { name: 'public.\\.', records: 2 },
    { name: 'public.-- Data for Name: x; Type: TABLE DATA;', records: 1 },
    { name: 'public.a;b$$c', records: 3 },
  ];

  test('counts only the blocks psql sends, whatever the names, comments and function bodies hold', () => {
    const counter = count([Buffer.from(hostile)]);
    assert.deepEqual(counter.objects(), real);
    assert.deepEqual(counter.issues(), []);
  });

  test('and the same at every chunk boundary', () => {
    const bytes = Buffer.from(hostile);
    for (let split = 0; split <= bytes.length; split++)
      assert.deepEqual(count([bytes.subarray(0, split), bytes.subarray(split)]).objects(), real, `split at ${split}`);
    const single: Buffer[] = [];
    for (let at = 0; at < bytes.length; at++) single.push(bytes.subarray(at, at + 1));
    assert.deepEqual(count(single).objects(), real, 'one byte at a time');
  });

  test('a COPY whose table cannot be read is still a block: its data is skipped and the problem told', () => {
    const counter = count([
      Buffer.from('COPY (select 1) FROM stdin;\n1\n\\.\nCOPY public.t (a) FROM stdin;\n1\n\\.\n'),
    ]);
    assert.deepEqual(counter.objects(), [{ name: 'public.t', records: 1 }]);
    assert.deepEqual(
      counter.blocks().map((b) => b.table),
      [undefined, 'public.t'],
    );
    assert.match(counter.issues()[0] ?? '', /cannot read the table of: COPY \(select 1\)/);
  });
});

describe('parseCopyTarget', () => {
  test('unquotes identifiers', () => {
    assert.equal(parseCopyTarget('COPY public.t (a, b) FROM stdin;'), 'public.t');
    assert.equal(parseCopyTarget('COPY "a.b"."c""d" (x) FROM stdin;'), 'a.b.c"d');
    assert.equal(parseCopyTarget('COPY "Sch"."Ta ble"  FROM stdin;'), 'Sch.Ta ble');
    assert.equal(parseCopyTarget('COPY t (a) FROM stdin;'), 't');
  });

  test('rejects what is not a COPY from stdin', () => {
    assert.equal(parseCopyTarget('COPY public.t (a) TO stdout;'), undefined);
    assert.equal(parseCopyTarget('COPY "unterminated (a) FROM stdin;'), undefined);
    assert.equal(parseCopyTarget('COPY a.b.c.d (a) FROM stdin;'), undefined);
  });
});
