import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import {
  aclSQL,
  createDatabaseSQL,
  type DatabaseState,
  parseAclItem,
  readDatabaseState,
  settingSQL,
  splitNameList,
  stateHeader,
} from './database-state.ts';

const state: DatabaseState = {
  version: 1,
  encoding: 'LATIN1',
  collate: 'C',
  ctype: 'C',
  localeProvider: 'libc',
  locale: null,
  icuRules: null,
  connectionLimit: -1,
  owner: 'app',
  acl: null,
  comment: 'line\nbreak -- and "quotes"',
  settings: [],
  roles: ['app'],
};

test('splitNameList reads list settings as PostgreSQL stores them', () => {
  assert.deepEqual(splitNameList('"$user", public'), ['$user', 'public']);
  assert.deepEqual(splitNameList('app,"Odd ""Schema"", x" ,  b'), ['app', 'Odd "Schema", x', 'b']);
  assert.deepEqual(splitNameList('""'), ['']);
  assert.deepEqual(splitNameList(''), []);
});

test('settingSQL quotes each element of a list setting, and other values whole', () => {
  assert.deepEqual(settingSQL('search_path="$user", app'), {
    sql: `set :"name" to :'value0', :'value1'`,
    vars: { name: 'search_path', value0: '$user', value1: 'app' },
  });
  assert.deepEqual(settingSQL('DateStyle=ISO, DMY'), {
    sql: `set :"name" to :'value0'`,
    vars: { name: 'DateStyle', value0: 'ISO, DMY' },
  });
  assert.deepEqual(settingSQL('app.x=a=b').vars, { name: 'app.x', value0: 'a=b' });
});

test('parseAclItem reads grantee, privileges, grant options and grantor', () => {
  assert.deepEqual(parseAclItem('=Tc/postgres'), {
    grantee: '',
    privileges: ['temporary', 'connect'],
    grantOption: [],
    grantor: 'postgres',
  });
  assert.deepEqual(parseAclItem('"a ""b""=/x"=C*c/"o/w"'), {
    grantee: 'a "b"=/x',
    privileges: ['connect'],
    grantOption: ['create'],
    grantor: 'o/w',
  });
  assert.throws(() => parseAclItem('app=X/o'), /unknown database privilege/);
});

test('aclSQL replaces the privileges, granting as another grantor through SET ROLE', () => {
  const { sql, vars } = aclSQL(['app=CTc/app', 'reader=c/app', 'sub=c/reader'], 'app');
  assert.equal(
    sql,
    [
      'revoke all on database :"database" from public, :"acl_owner";',
      'grant create, temporary, connect on database :"database" to :"grantee0";',
      'grant connect on database :"database" to :"grantee1";',
      'set role :"grantor2"; grant connect on database :"database" to :"grantee2"; reset role;',
    ].join('\n'),
  );
  assert.deepEqual(vars, {
    acl_owner: 'app',
    grantee0: 'app',
    grantee1: 'reader',
    grantee2: 'sub',
    grantor2: 'reader',
  });
});

test('createDatabaseSQL recreates encoding and locale, and refuses what the server cannot create', () => {
  assert.deepEqual(createDatabaseSQL(undefined, 150000), {
    sql: 'create database :"scratch" template template0',
    vars: {},
  });
  assert.equal(
    createDatabaseSQL(state, 130000).sql,
    `create database :"scratch" template template0 encoding :'encoding' lc_collate :'collate' lc_ctype :'ctype'`,
  );
  const icu = { ...state, encoding: 'UTF8', localeProvider: 'icu' as const, locale: 'de', connectionLimit: 5 };
  assert.deepEqual(createDatabaseSQL(icu, 150000), {
    sql: `create database :"scratch" template template0 encoding :'encoding' lc_collate :'collate' lc_ctype :'ctype' locale_provider :'provider' icu_locale :'locale'`,
    vars: { encoding: 'UTF8', collate: 'C', ctype: 'C', provider: 'icu', locale: 'de' },
  });
  assert.throws(() => createDatabaseSQL(icu, 140000), /icu locale provider.*PostgreSQL 15 or newer/);
  assert.throws(() => createDatabaseSQL({ ...icu, icuRules: '&a<b' }, 150000), /ICU collation rules/);
});

test('readDatabaseState reads the header line and leaves the whole stream to read', async () => {
  const header = stateHeader(state);
  const rest = '--\n-- PostgreSQL database dump\n--\nselect 1;\n';
  const data = new PassThrough();
  // the header arrives split over chunks, the dump after it in the same chunk
  data.write(header.subarray(0, 10));
  setTimeout(() => data.end(Buffer.concat([header.subarray(10), Buffer.from(rest)])), 5);
  assert.deepEqual(await readDatabaseState(data), state);
  const all: Buffer[] = [];
  for await (const chunk of data) all.push(chunk as Buffer);
  assert.equal(Buffer.concat(all).toString(), header.toString() + rest);
});

test('readDatabaseState: a dump without a header (an older backup) has no state and loses nothing', async () => {
  const dump = '--\n-- PostgreSQL database dump\n--\n';
  const data = Readable.from([Buffer.from(dump)]);
  assert.equal(await readDatabaseState(data), undefined);
  const all: Buffer[] = [];
  for await (const chunk of data) all.push(chunk as Buffer);
  assert.equal(Buffer.concat(all).toString(), dump);
  assert.equal(await readDatabaseState(Readable.from([])), undefined);
  await assert.rejects(readDatabaseState(Readable.from([Buffer.from('no newline')])), /before its first line ends/);
  await assert.rejects(
    readDatabaseState(Readable.from([Buffer.from('-- tidemark-database-state: {"version": 1,\n')])),
    /database state line is not JSON/,
  );
});
