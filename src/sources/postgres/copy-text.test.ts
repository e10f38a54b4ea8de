// Exports (issue 13, R-EXPORT): COPY text rows of a pg_dump stream become RFC 4180 CSV records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvRecord } from '../../export/csv.ts';
import { entryName } from '../../export/database-csv.ts';
import { CopyCounter, parseCopyStatement } from './copy-counter.ts';
import { copyTextFields } from './copy-text.ts';

const csv = (line: string) => csvRecord(copyTextFields(Buffer.from(line))).toString('utf8');

test('COPY text escapes decode and hostile values are quoted as RFC 4180 says', () => {
  assert.equal(csv('1\tplain'), '1,plain\r\n');
  assert.equal(csv('2\ttab\\there'), '2,tab\there\r\n');
  assert.equal(csv('3\tline\\nbreak\\r\\nCRLF'), '3,"line\nbreak\r\nCRLF"\r\n');
  assert.equal(csv('4\tsays "hi", twice'), '4,"says ""hi"", twice"\r\n');
  assert.equal(csv('5\tback\\\\slash'), '5,back\\slash\r\n');
  assert.equal(csv('6\t\\N\t'), '6,,""\r\n', 'NULL is an empty field, the empty string is ""');
  assert.equal(csv('7\t\\\\N'), '7,\\N\r\n', 'the text \\N is not NULL');
  assert.equal(csv('8\tgrüße ☃ 𝄞'), '8,grüße ☃ 𝄞\r\n');
  assert.equal(csv('9\t\\\\x00ff0a'), '9,\\x00ff0a\r\n', 'bytea keeps its hex text form');
  assert.equal(csv('10\t\\\\.'), '10,"\\."\r\n', 'a value \\. alone is quoted, else COPY FROM CSV ends there');
  assert.equal(csv('11\t\\b\\f\\v\\101\\x41\\x4'), '11,\b\f\vAA\x04\r\n');
  assert.equal(csv('12\t,'), '12,","\r\n');
  assert.equal(csv('13\t  spaced  '), '13,  spaced  \r\n');
});

test('the column list is read from the COPY statement, quoted identifiers unquoted', () => {
  const parseCopyColumns = (statement: string) => parseCopyStatement(statement)?.columns;
  assert.deepEqual(parseCopyColumns('COPY public.t (id, "we;ird", "Quo""te", "a,b") FROM stdin;'), [
    'id',
    'we;ird',
    'Quo"te',
    'a,b',
  ]);
  assert.deepEqual(parseCopyColumns('COPY "a (b".t (x) FROM stdin;'), ['x']);
  assert.equal(parseCopyColumns('COPY public.empty  FROM stdin;'), undefined);
});

test('every data line reaches the row listener whole, wherever the chunks split', () => {
  const dump = Buffer.from(
    'SET x = 1;\nCOPY public.t (a, b) FROM stdin;\n1\tone\\nline\n2\t\\N\n\\.\nCOPY s."T" (c) FROM stdin;\nxyz\n\\.\n',
  );
  for (let split = 0; split <= dump.length; split++) {
    const rows: string[] = [];
    const counter = new CopyCounter({
      onRow: (table, columns, line) => rows.push(`${table}(${columns?.join('|')}):${line.toString()}`),
    });
    counter.write(dump.subarray(0, split));
    counter.write(dump.subarray(split));
    counter.end();
    assert.deepEqual(rows, ['public.t(a|b):1\tone\\nline', 'public.t(a|b):2\t\\N', 's.T(c):xyz'], `split at ${split}`);
    assert.deepEqual(counter.objects(), [
      { name: 'public.t', records: 2 },
      { name: 's.T', records: 1 },
    ]);
  }
});

test('ZIP entry names never make folders or hide characters', () => {
  assert.equal(entryName('shop', 'public.a/b\\c%d\ne'), 'shop/public.a%2Fb%5Cc%25d%0Ae.csv');
  assert.equal(entryName('../x', '..'), '..%2Fx/...csv');
});
