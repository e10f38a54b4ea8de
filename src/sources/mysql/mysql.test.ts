// What the MySQL source decides before it talks to a server: descriptions without secrets, input checks,
// tool lookup, literal quoting (R-BACKUP, R-RESTORE). The server side is in test/integration/mysql-source.test.ts.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { isCode } from '../../errors.ts';
import { errorLine, findTool, quoteIdentifier, quoteString } from './client.ts';
import { databaseHeader, stringLiteral } from './dump.ts';
import { MySQLSource, type MySQLSourceOptions } from './mysql.ts';

const options = (overrides: Partial<MySQLSourceOptions> = {}): MySQLSourceOptions => ({
  host: 'db.example',
  port: 3306,
  user: 'backup',
  password: 's3cret',
  databases: ['app'],
  ...overrides,
});

describe('MySQLSource', () => {
  test('description names user, host, port and databases, never the password', () => {
    assert.equal(new MySQLSource(options()).description, 'mysql://backup@db.example:3306/app');
    assert.equal(
      new MySQLSource(options({ databases: ['a', 'b c'] })).description,
      'mysql://backup@db.example:3306/a,b%20c',
    );
    assert.equal(new MySQLSource(options({ databases: 'all' })).description, 'mysql://backup@db.example:3306/*');
    assert.equal(new MySQLSource(options({ host: '::1' })).description, 'mysql://backup@[::1]:3306/app');
  });

  test('refuses an empty list and names no database can have', () => {
    for (const databases of [[], [''], ['x'.repeat(65)], ['nul\0'], ['trailing ']])
      assert.throws(
        () => new MySQLSource(options({ databases })),
        (error) => isCode(error, 'InvalidArgument'),
      );
  });

  test('restore refuses a bad target name or mode before connecting', async () => {
    const source = new MySQLSource(options({ port: 1 }));
    const data = Readable.from([]);
    await assert.rejects(source.restore(data, { database: '', mode: 'new' }), (e) => isCode(e, 'InvalidArgument'));
    await assert.rejects(source.restore(data, { database: 'x', mode: 'merge' as 'new' }), (e) =>
      isCode(e, 'InvalidArgument'),
    );
  });
});

describe('client helpers', () => {
  test('findTool prefers the MariaDB name and falls back to the MySQL one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-tools-'));
    try {
      const add = (name: string) => {
        writeFileSync(join(dir, name), '#!/bin/sh\n');
        chmodSync(join(dir, name), 0o755);
      };
      add('mysqldump');
      assert.equal(findTool('dump', dir), join(dir, 'mysqldump'));
      assert.throws(
        () => findTool('client', dir),
        (e) => isCode(e, 'Unsupported'),
      );
      add('mariadb-dump');
      assert.equal(findTool('dump', `${dir}/:${dir}`), join(dir, 'mariadb-dump'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('quotes identifiers and strings whatever they hold', () => {
    assert.equal(quoteIdentifier('we`ird'), '`we``ird`');
    assert.equal(quoteString(''), "''");
    assert.equal(quoteString("a'\\"), "CONVERT(X'61275c' USING utf8mb4)");
  });

  test("the error line is the server's first ERROR, else the first line naming an error, else the tail", () => {
    const client = [
      '--------------',
      'INSERT INTO t VALUES (1)',
      '--------------',
      '',
      "ERROR 1146 (42S02) at line 3: Table 'db.t' doesn't exist",
      'ERROR 2013 (HY000): Lost connection',
    ].join('\n');
    assert.equal(errorLine(client), "ERROR 1146 (42S02) at line 3: Table 'db.t' doesn't exist");
    assert.equal(
      errorLine(
        "mariadb-dump: warning: x\nmariadb-dump: Got error: 1049: Unknown database 'd' when selecting the database\n",
      ),
      "mariadb-dump: Got error: 1049: Unknown database 'd' when selecting the database",
    );
    assert.equal(errorLine('a\nb\nc\nd\n'), 'b / c / d');
  });

  test('the database header carries charset, collation and a comment that stays a literal', () => {
    assert.equal(
      databaseHeader('latin1', 'latin1_german1_ci', "it's \\ here\n"),
      "SET @tidemark_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '';\n" +
        "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_german1_ci COMMENT 'it''s \\\\ here\\n';\n" +
        'SET SESSION sql_mode = @tidemark_sql_mode;\n',
    );
    assert.equal(databaseHeader('latin1; DROP', 'x', ''), '', 'names that are not words are not written');
    assert.equal(stringLiteral("a'b\\c\0"), "'a''b\\\\c\\0'");
  });
});
