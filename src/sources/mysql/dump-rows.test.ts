// The streaming row counter behind per-table record counts of MySQL/MariaDB backups (R-BACKUP, R-VERIFY).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { referenceChecksum } from '../../../test/harness/checksum.ts';
import { DumpRowCounter, type TableRows } from './dump-rows.ts';

function count(...chunks: (string | Buffer)[]): TableRows[] {
  const counter = new DumpRowCounter();
  for (const chunk of chunks) counter.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  counter.end();
  return counter.tables();
}

const asObject = (tables: TableRows[]) => Object.fromEntries(tables.map((t) => [t.table, t.rows]));

// Shaped like mariadb-dump 10.11 output: sandbox line, versioned comments, an empty table, a multi-line
// INSERT, a trigger whose body holds `*/` in a string, a procedure whose body holds an INSERT, events.
const sample = String.raw`/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;

--
-- Table structure for table ${'`empty`'}
--

DROP TABLE IF EXISTS ${'`empty`'};
/*!40101 SET @saved_cs_client     = @@character_set_client */;
CREATE TABLE ${'`empty`'} (
  ${'`id`'} int(11) DEFAULT NULL COMMENT 'it''s (empty); INSERT INTO ${'`empty`'} VALUES (1)'
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
LOCK TABLES ${'`empty`'} WRITE;
/*!40000 ALTER TABLE ${'`empty`'} DISABLE KEYS */;
/*!40000 ALTER TABLE ${'`empty`'} ENABLE KEYS */;
UNLOCK TABLES;
CREATE TABLE ${'`t`'} (
  ${'`id`'} int(11) NOT NULL,
  ${'`s`'} varchar(50) DEFAULT NULL,
  PRIMARY KEY (${'`id`'})
) ENGINE=InnoDB;
LOCK TABLES ${'`t`'} WRITE;
INSERT INTO ${'`t`'} VALUES
(1,'it\'s (a), test\\',0x00FF27,'{\"a\":1}',1.50,'a',0x05),
(2,NULL,NULL,NULL,NULL,NULL,NULL),
(3,'),(\\',_binary 'x',b'101',-1.5e3,'''',"dq \" ),( "),
(4,'line
break; (', NULL, '\\\'', '#', '-- ', '/*');
INSERT INTO ${'`t`'} VALUES (5,'a'),(6,'b');
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=${'`root`'}@${'`127.0.0.1`'}*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.s = CONCAT(NEW.s, '*/'); INSERT INTO ${'`t`'} VALUES (7); END 
*/;;
DELIMITER ;
-- a comment: INSERT INTO ${'`t`'} VALUES (8),(9); it's
# another: INSERT INTO ${'`t`'} VALUES (10);
/* block: INSERT INTO ${'`t`'} VALUES (11); ' */
DELIMITER ;;
CREATE DEFINER=${'`root`'}@${'`127.0.0.1`'} PROCEDURE ${'`p`'}()
BEGIN
INSERT INTO ${'`t`'} VALUES (9,'x',NULL);
SELECT ';' ;
END
;;
DELIMITER ;
/*!50001 CREATE VIEW ${'`v`'} AS SELECT
 NULL AS ${'`id`'} */;
INSERT INTO ${'`we``ird ü`'} VALUES (1),(2),(3);
-- Dump completed on 2026-11-23  8:57:49
`;

const expected = { empty: 0, t: 6, 'we`ird ü': 3 };

describe('DumpRowCounter', () => {
  test('counts top-level tuples per table and lists empty tables', () => {
    assert.deepEqual(count(sample), [
      { table: 'empty', rows: 0 },
      { table: 't', rows: 6 },
      { table: 'we`ird ü', rows: 3 },
    ]);
  });

  test('handles backslash escapes, doubled quotes and parentheses or commas inside strings', () => {
    const dump = String.raw`INSERT INTO ${'`a`'} VALUES (1,'\''),(2,'\\'),(3,'x''y'),(4,'(,)'),(5,'\\\''),(6,'),('),(7,"'"),(8,'\"');`;
    assert.deepEqual(count(dump), [{ table: 'a', rows: 8 }]);
  });

  test('counts every INSERT of a table and several tables', () => {
    const dump = [
      'INSERT INTO `a` VALUES (1),(2);',
      'INSERT INTO `b` VALUES (1);',
      'INSERT INTO `a` VALUES (3);',
      'REPLACE INTO `c` VALUES (1),(2);',
      'INSERT IGNORE INTO `d` VALUES (1);',
    ].join('\n');
    assert.deepEqual(asObject(count(dump)), { a: 3, b: 1, c: 2, d: 1 });
  });

  test('a dump without INSERTs has only empty tables', () => {
    assert.deepEqual(count('CREATE TABLE `x` (\n  `id` int\n);\nCREATE TABLE IF NOT EXISTS `y` (`id` int);\n'), [
      { table: 'x', rows: 0 },
      { table: 'y', rows: 0 },
    ]);
    assert.deepEqual(count(''), []);
  });

  test('INSERTs with a column list (INVISIBLE columns, --dump-history) count their rows, not the list', () => {
    const dump = [
      'INSERT INTO `inv` (`id`, `secret`, `f`) VALUES (1,5,0.1),\n(2,5,0.333333);',
      "INSERT INTO `vers` (`id`, `v`, row_start, row_end) VALUES (1,1,'2026-12-01 18:38:12.687528','2026-12-01 18:38:12.687672'),(1,2,'a','b'),(1,3,'(c)','d');",
      'INSERT INTO `x`(`a`) VALUES(1);',
    ].join('\n');
    assert.deepEqual(asObject(count(dump)), { inv: 2, vers: 3, x: 1 });
  });

  test('names and comments a tenant controls cannot forge or hide rows', () => {
    // As mariadb-dump 10.11 writes a table whose name holds a newline and `-- `, and a comment that looks like data.
    const name = 'a\n-- b\nINSERT INTO `t` VALUES (1);';
    const quoted = `\`${name.replaceAll('`', '``')}\``;
    const dump = [
      `--\n-- Table structure for table ${quoted.replaceAll('\n', '\n-- ')}\n--\n`,
      `CREATE TABLE ${quoted} (\n  \`id\` int(11) DEFAULT NULL COMMENT 'x'');\\nINSERT INTO \`t\` VALUES (9),(10);\\n-- */'\n) COMMENT='*/ INSERT INTO \`t\` VALUES (1);';`,
      `LOCK TABLES ${quoted} WRITE;`,
      `/*!40000 ALTER TABLE ${quoted} DISABLE KEYS */;`,
      `INSERT INTO ${quoted} VALUES (1),\n(2);`,
      `/*!40000 ALTER TABLE ${quoted} ENABLE KEYS */;`,
      'UNLOCK TABLES;',
    ].join('\n');
    assert.deepEqual(count(dump), [{ table: name, rows: 2 }]);
  });

  test('a last statement without its delimiter still counts', () => {
    assert.deepEqual(count('INSERT INTO `a` VALUES (1),(2)'), [{ table: 'a', rows: 2 }]);
  });

  test('a chunk boundary at every byte gives the same counts', () => {
    const bytes = Buffer.from(sample);
    for (let cut = 0; cut <= bytes.length; cut++)
      assert.deepEqual(asObject(count(bytes.subarray(0, cut), bytes.subarray(cut))), expected, `cut at ${cut}`);
  });

  test('one-byte chunks give the same counts', () => {
    const bytes = Buffer.from(sample);
    const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
    assert.deepEqual(asObject(count(...chunks)), expected);
  });

  test('random rows escaped as mariadb-dump escapes them, cut into random chunks', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = ["'", '"', '\\', '(', ')', ',', ';', '`', '\n', '\r', '\0', '\x1a', '#', '-', '/', '*', 'a', ' '];
    // What mysql_real_escape_string does.
    const escapes: Record<string, string> = {
      '\0': '\\0',
      '\n': '\\n',
      '\r': '\\r',
      '\x1a': '\\Z',
      '\\': '\\\\',
      "'": "\\'",
      '"': '\\"',
    };
    const escapeLikeDump = (s: string) => Array.from(s, (c) => escapes[c] ?? c).join('');
    const expectedRows: Record<string, number> = {};
    const statements: string[] = [];
    for (let s = 0; s < 200; s++) {
      const table = `t${random(5)}`;
      const rows = 1 + random(20);
      expectedRows[table] = (expectedRows[table] ?? 0) + rows;
      const tuples = Array.from({ length: rows }, (_, r) => {
        const text = Array.from({ length: random(12) }, () => alphabet[random(alphabet.length)]).join('');
        return `(${r},'${escapeLikeDump(text)}',NULL,0x${random(256).toString(16).padStart(2, '0')})`;
      });
      statements.push(`INSERT INTO \`${table}\` VALUES ${tuples.join(random(2) ? ',' : ',\n')};`);
    }
    const bytes = Buffer.from(statements.join('\n'));
    for (let attempt = 0; attempt < 20; attempt++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + random(64);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(asObject(count(...chunks)), expectedRows);
    }
  });

  // How fast is a benchmark's question (the machine is shared): this checks a large dump in 64 KiB pieces.
  test('counts a million rows of a large dump fed in 64 KiB pieces', () => {
    const row = "(123456,'some text with \\'escapes\\' and (parens), commas',0xDEADBEEF,NULL,12.50),";
    const statement = Buffer.from(`INSERT INTO \`big\` VALUES ${row.repeat(9999)}${row.slice(0, -1)};\n`);
    const counter = new DumpRowCounter();
    for (let i = 0; i < 100; i++)
      for (let at = 0; at < statement.length; at += 65536) counter.push(statement.subarray(at, at + 65536));
    counter.end();
    assert.deepEqual(counter.tables(), [{ table: 'big', rows: 1_000_000 }]);
  });
});

describe('DumpRowCounter recording table statistics', () => {
  // The checksum's definition: each row's tuple text, `(` to `)`.
  const reference = referenceChecksum;
  const table = 'we`ird, (t);\n☃';
  const quoted = `\`${table.replaceAll('`', '``')}\``;
  const tuples = [
    String.raw`(1,'a,b),(\'','2024-01-01 10:00:00')`,
    String.raw`(-7,'x\\',NULL)`,
    String.raw`(1,'a,b),(\'','2024-01-01 10:00:00')`, // a duplicate counts twice
    `(12,'line
break; -- #',  '2025-06-30 23:59:59.500000')`,
  ];
  const listed = `(99,5,'2030-01-01 00:00:00')`;
  const dump = [
    `CREATE TABLE ${quoted} (\n  \`id\` int NOT NULL,\n  \`note\` text,\n  \`at\` datetime(6),\n  \`h\` int INVISIBLE\n);\n`,
    `INSERT INTO ${quoted} VALUES ${tuples.join(',')};\n`,
    `/*!40000 ALTER TABLE ${quoted} ENABLE KEYS */;\n`,
    `INSERT INTO ${quoted} (\`id\`, \`h\`, \`at\`) VALUES ${listed};\n`,
    'CREATE TABLE `empty` (`id` int);\n',
    "INSERT INTO `other` VALUES (1,'2020-01-01'),(2,NULL);\n",
  ].join('');
  const stats = new Map([
    [table, { columns: ['id', 'note', 'at'], key: 'id', timestamp: 'at' }],
    ['other', { columns: ['id', 'at'], timestamp: 'at' }],
  ]);
  const expected = [
    {
      name: table,
      records: 5,
      checksum: reference([...tuples, listed]),
      key: { column: 'id', min: '-7', max: '99' },
      newest: { column: 'at', value: '2030-01-01 00:00:00' },
    },
    { name: 'empty', records: 0, checksum: '0'.repeat(32) },
    {
      name: 'other',
      records: 2,
      checksum: reference(["(1,'2020-01-01')", '(2,NULL)']),
      newest: { column: 'at', value: '2020-01-01' },
    },
  ];
  const record = (chunks: Buffer[]) => {
    const counter = new DumpRowCounter({ stats });
    for (const chunk of chunks) counter.push(chunk);
    counter.end();
    return counter.objects();
  };

  test('checksum, integer key range and newest timestamp per table, with and without a column list', () => {
    assert.deepEqual(record([Buffer.from(dump)]), expected);
  });

  test('the same at every split point and one byte at a time', () => {
    const bytes = Buffer.from(dump);
    for (let split = 0; split <= bytes.length; split++)
      assert.deepEqual(record([bytes.subarray(0, split), bytes.subarray(split)]), expected, `split at ${split}`);
    const single: Buffer[] = [];
    for (let at = 0; at < bytes.length; at++) single.push(bytes.subarray(at, at + 1));
    assert.deepEqual(record(single), expected, 'one byte at a time');
  });

  test('with a row listener too, both are whole at every split point', () => {
    const bytes = Buffer.from(dump);
    const listColumns = ['id', 'h', 'at'];
    const created = ['id', 'note', 'at', 'h'];
    const rows = [
      ...tuples.map((tuple) => ({ table, columns: created, tuple: tuple.slice(1, -1) })),
      { table, columns: listColumns, tuple: listed.slice(1, -1) },
      { table: 'other', columns: undefined, tuple: "1,'2020-01-01'" },
      { table: 'other', columns: undefined, tuple: '2,NULL' },
    ];
    for (let split = 0; split <= bytes.length; split++) {
      const seen: { table: string; columns: string[] | undefined; tuple: string }[] = [];
      const counter = new DumpRowCounter({
        stats,
        onRow: (table, columns, tuple) => seen.push({ table, columns, tuple: tuple.toString() }),
      });
      counter.push(bytes.subarray(0, split));
      counter.push(bytes.subarray(split));
      counter.end();
      assert.deepEqual(counter.objects(), expected, `split at ${split}`);
      assert.deepEqual(seen, rows, `split at ${split}`);
    }
  });

  test('without plans it only counts', () => {
    const counter = new DumpRowCounter();
    counter.push(Buffer.from(dump));
    counter.end();
    assert.deepEqual(
      counter.objects(),
      expected.map(({ name, records }) => ({ name, records })),
    );
  });
});
