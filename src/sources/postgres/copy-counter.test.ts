// Row counting from the pg_dump stream (R-BACKUP: per-object record counts in the dump's snapshot).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { referenceChecksum } from '../../../test/harness/checksum.ts';
import { CopyCounter, parseCopyStatement } from './copy-counter.ts';

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

describe('parseCopyStatement', () => {
  const target = (statement: string) => parseCopyStatement(statement)?.table;
  test('unquotes identifiers', () => {
    assert.equal(target('COPY public.t (a, b) FROM stdin;'), 'public.t');
    assert.equal(target('COPY "a.b"."c""d" (x) FROM stdin;'), 'a.b.c"d');
    assert.equal(target('COPY "Sch"."Ta ble"  FROM stdin;'), 'Sch.Ta ble');
    assert.equal(target('COPY t (a) FROM stdin;'), 't');
  });

  test('reads the column list, quoted names with commas, parentheses and quotes included', () => {
    assert.deepEqual(parseCopyStatement('COPY public.t (a, b) FROM stdin;')?.columns, ['a', 'b']);
    assert.deepEqual(parseCopyStatement('COPY t (id, "a, b", "x)""y", "\t\n") FROM stdin;')?.columns, [
      'id',
      'a, b',
      'x)"y',
      '\t\n',
    ]);
    assert.equal(parseCopyStatement('COPY public.t  FROM stdin;')?.columns, undefined);
  });

  test('rejects what is not a COPY from stdin', () => {
    assert.equal(target('COPY public.t (a) TO stdout;'), undefined);
    assert.equal(target('COPY "unterminated (a) FROM stdin;'), undefined);
    assert.equal(target('COPY a.b.c.d (a) FROM stdin;'), undefined);
  });
});

describe('CopyCounter recording table statistics', () => {
  const reference = referenceChecksum;
  const table = 'we\tird\n"name\\ ☃';
  const quoted = `"${table.replaceAll('"', '""')}"`;
  const rows = [
    '10\tplain\t2024-01-01 10:00:00+00',
    '-3\ttab\\there, newline\\nand \\\\ backslash\t2025-06-30 23:59:59.5+02',
    '7\t\\N\t\\N',
    '7\t\\N\t\\N', // a duplicate row counts twice
    '12\t☃ \\\\. \\. and \\0\t2025-06-30 22:00:00+00', // newest: 22:00 UTC is after 21:59:59.5 UTC
  ];
  const stats = new Map([
    [`public.${table}`, { key: 'id', timestamp: 'at' }],
    ['public.nokey', { timestamp: 'missing' }],
  ]);
  const text = [
    `COPY public.${quoted} (id, "note\t,)", at) FROM stdin;\n`,
    ...rows.map((row) => `${row}\n`),
    '\\.\n',
    'COPY public.nokey (a) FROM stdin;\nx\n\\.\n',
    `COPY public.${quoted} (at, id, "note\t,)") FROM stdin;\n2030-01-01 00:00:00+00\t99\tlater block\n\\.\n`,
  ].join('');
  const expected = [
    {
      name: `public.${table}`,
      records: 6,
      checksum: reference([...rows, '2030-01-01 00:00:00+00\t99\tlater block']),
      key: { column: 'id', min: '-3', max: '99' },
      newest: { column: 'at', value: '2030-01-01 00:00:00+00' },
    },
    { name: 'public.nokey', records: 1, checksum: reference(['x']) },
  ];

  const record = (chunks: Buffer[]) => {
    const counter = new CopyCounter({ stats });
    for (const chunk of chunks) counter.write(chunk);
    counter.end();
    return counter.objects();
  };

  test('checksum, integer key range and newest timestamp per table, blocks summed', () => {
    assert.deepEqual(record([Buffer.from(text)]), expected);
  });

  test('the same at every split point and one byte at a time', () => {
    const bytes = Buffer.from(text);
    for (let split = 0; split <= bytes.length; split++)
      assert.deepEqual(record([bytes.subarray(0, split), bytes.subarray(split)]), expected, `split at ${split}`);
    const single: Buffer[] = [];
    for (let at = 0; at < bytes.length; at++) single.push(bytes.subarray(at, at + 1));
    assert.deepEqual(record(single), expected, 'one byte at a time');
  });

  test('with a row listener too, both are whole at every split point', () => {
    const bytes = Buffer.from(text);
    const columns = ['id', 'note\t,)', 'at'];
    const lines = [
      ...rows.map((line) => `public.${table}|${columns.join('|')}|${line}`),
      'public.nokey|a|x',
      `public.${table}|at|id|note\t,)|2030-01-01 00:00:00+00\t99\tlater block`,
    ];
    for (let split = 0; split <= bytes.length; split++) {
      const seen: string[] = [];
      const counter = new CopyCounter({
        stats,
        onRow: (name, names, line) => seen.push(`${name}|${names?.join('|')}|${line.toString()}`),
      });
      counter.write(bytes.subarray(0, split));
      counter.write(bytes.subarray(split));
      counter.end();
      assert.deepEqual(counter.objects(), expected, `split at ${split}`);
      assert.deepEqual(seen, lines, `split at ${split}`);
    }
  });

  test('the checksum ignores row order but not duplicates', () => {
    const dump = (lines: string[]) => `COPY public.t (a) FROM stdin;\n${lines.map((l) => `${l}\n`).join('')}\\.\n`;
    const sum = (lines: string[]) => {
      const counter = new CopyCounter({ stats: new Map() });
      counter.write(Buffer.from(dump(lines)));
      counter.end();
      return counter.objects()[0]?.checksum;
    };
    assert.equal(sum(['a', 'b', 'c']), sum(['c', 'a', 'b']));
    assert.notEqual(sum(['a', 'a']), sum([]));
    assert.notEqual(sum(['a', 'a', 'b']), sum(['a', 'b', 'b']));
    assert.equal(sum([]), '0'.repeat(32));
  });

  test('without plans it only counts', () => {
    const counter = new CopyCounter();
    counter.write(Buffer.from(text));
    counter.end();
    assert.deepEqual(counter.objects(), [
      { name: `public.${table}`, records: 6 },
      { name: 'public.nokey', records: 1 },
    ]);
  });
});
