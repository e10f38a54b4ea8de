// Exports (issue 13, R-EXPORT): INSERT rows of a mariadb-dump stream become RFC 4180 CSV records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvRecord } from '../../export/csv.ts';
import { DumpRowCounter } from './dump-rows.ts';
import { insertValues } from './insert-values.ts';

const csv = (tuple: string) => csvRecord(insertValues(Buffer.from(tuple))).toString('utf8');

test('INSERT literals decode as MariaDB reads them and hostile values are quoted as RFC 4180 says', () => {
  assert.equal(csv("1,'plain'"), '1,plain\r\n');
  assert.equal(csv("2,'tab\\there'"), '2,tab\there\r\n');
  assert.equal(csv("3,'line\\nbreak\\r\\nCRLF'"), '3,"line\nbreak\r\nCRLF"\r\n');
  assert.equal(csv(`4,'says \\"hi\\", it\\'s, ''twice'''`), `4,"says ""hi"", it's, 'twice'"\r\n`);
  assert.equal(csv("5,'back\\\\slash'"), '5,back\\slash\r\n');
  assert.equal(csv("6,NULL,''"), '6,,""\r\n', 'NULL is an empty field, the empty string is ""');
  assert.equal(csv("7,'NULL'"), '7,NULL\r\n', 'the text NULL is not NULL');
  assert.equal(csv("8,'grüße ☃ 𝄞'"), '8,grüße ☃ 𝄞\r\n');
  assert.equal(csv('9,0x00FF0A'), '9,\\x00ff0a\r\n', 'a --hex-blob value becomes PostgreSQL-style hex text');
  assert.equal(csv("10,'\\0\\Z\\%\\_'"), '10,\0\x1a\\%\\_\r\n');
  assert.equal(csv("11,_binary 'ab',_utf8mb4'c'"), '11,ab,c\r\n');
  assert.equal(csv("-1.5e3 , 'a,b' ,'(x)'"), '-1.5e3,"a,b",(x)\r\n');
  assert.equal(csv("12,'\\\\.'"), '12,"\\."\r\n');
  assert.throws(() => insertValues(Buffer.from("1,'open")), /closing quote/);
});

test('every row reaches the listener with its columns, wherever the chunks split', () => {
  const dump = Buffer.from(
    [
      "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `we``ird` text DEFAULT '(,',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n",
      "INSERT INTO `t` VALUES (1,'a);(b'),(2,NULL);\n",
      "INSERT INTO `h` (`a`, `row_start`) VALUES (3,'x');\n",
    ].join(''),
  );
  for (let split = 0; split <= dump.length; split++) {
    const rows: string[] = [];
    const counter = new DumpRowCounter({
      onRow: (table, columns, tuple) => rows.push(`${table}(${columns?.join('|')}):${tuple.toString()}`),
    });
    counter.push(dump.subarray(0, split));
    counter.push(dump.subarray(split));
    counter.end();
    assert.deepEqual(
      rows,
      ["t(id|we`ird):1,'a);(b'", 't(id|we`ird):2,NULL', "h(a|row_start):3,'x'"],
      `split at ${split}`,
    );
    assert.deepEqual(counter.tables(), [
      { table: 't', rows: 2 },
      { table: 'h', rows: 1 },
    ]);
  }
});
