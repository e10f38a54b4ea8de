// Exports (issue 13, R-EXPORT): a database backup exported as CSV-in-ZIP through the agent's export
// task into the repository's object store (versitygw S3, Azurite), downloaded with plain fetch from its
// link, opened with Python's zipfile (another ZIP implementation), and every CSV reloaded into fresh
// tables of a real server: same counts, same content checksums. The link works until it expires and
// is refused after. `check` ignores the export object.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { runBackup } from '../../src/agent/run-backup.ts';
import { type ExportOutcome, runExport } from '../../src/agent/tasks/export.ts';
import { check } from '../../src/repository/check.ts';
import { prune } from '../../src/repository/prune.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { Snapshot } from '../../src/repository/snapshot.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type AzuriteServer, startAzurite } from '../harness/azurite.ts';
import { type MariaDBServer, startMariaDB } from '../harness/mariadb.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const workDir = makeWorkDir('export');
const passphrase = Buffer.from('export test passphrase');
let pg: PostgresServer;
let maria: MariaDBServer;
let s3: S3Server;
let azurite: AzuriteServer;
let s3Url: string;
let s3Env: NodeJS.ProcessEnv;

// Every value a CSV writer gets wrong somewhere: separators, quotes, line breaks, backslashes, NULL
// next to the empty string, the COPY terminator alone, non-ASCII text, and every byte value.
const hostileTexts = [
  'plain',
  'tab\there',
  'line\nbreak',
  'crlf\r\nend',
  'says "hi", twice',
  'back\\slash \\N \\t',
  '',
  '\\.',
  'grüße ☃ 𝄞 中文',
  ' leading and trailing ',
  ',',
  '"',
  'NULL',
];

const PG_SCHEMA = `
create table public.hostile (id int primary key, t text, b bytea, n numeric, j jsonb, ts timestamptz);
create table "odd ""schema"".""We, ird/Na\\me" ("col, one" text, "col ""two""" int);
create table public.empty (id int, note text);
`;

before(async () => {
  [pg, maria, s3, azurite] = await Promise.all([
    startPostgres(workDir.path),
    startMariaDB(workDir.path),
    startS3(workDir.path),
    startAzurite(workDir.path),
  ]);
  await s3.createBucket('exports');
  s3Url = `s3://exports/repo?endpoint=${s3.endpoint}&region=${s3.region}&pathStyle=true`;
  s3Env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
});

after(async () => {
  await Promise.allSettled([pg?.stop(), maria?.stop(), s3?.stop(), azurite?.stop()]);
  workDir.remove();
});

async function initRepository(url: string, env: NodeJS.ProcessEnv): Promise<Repository> {
  const storage = openStorage(url, env);
  await storage.ensureContainer();
  return Repository.init(storage, passphrase, { scrypt: { N: 1024, r: 8, p: 1 } });
}

/** Downloads the link with plain fetch into `dir/export.zip`, then lets Python's zipfile test every CRC and extract it. */
async function downloadAndOpen(link: string, dir: string): Promise<string[]> {
  const response = await fetch(link);
  assert.equal(response.status, 200, `the link works before it expires: ${await response.clone().text()}`);
  await mkdir(dir, { recursive: true });
  const zipPath = join(dir, 'export.zip');
  await writeFile(zipPath, Buffer.from(await response.arrayBuffer()));
  const script =
    'import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nbad = z.testzip()\nassert bad is None, bad\nz.extractall(sys.argv[2])\nprint(json.dumps(z.namelist()))';
  const { stdout } = await run('python3', ['-c', script, zipPath, join(dir, 'files')]);
  return JSON.parse(stdout) as string[];
}

async function expectRefused(link: string): Promise<void> {
  const response = await fetch(link);
  await response.arrayBuffer();
  assert.equal(response.status, 403, 'the link is refused once expired');
}

/** Exports with a link that lives `seconds`, and waits until then has passed afterwards in `expire`. */
async function exportWithLink(
  repository: Repository,
  snapshot: Snapshot,
  key: string,
  seconds: number,
): Promise<ExportOutcome & { expire: () => Promise<void> }> {
  const outcome = await runExport({
    repository,
    snapshot,
    kind: 'database',
    key,
    expiresAfterMs: seconds * 1000,
  });
  return { ...outcome, expire: () => sleep(Math.max(0, outcome.expiryTime.getTime() - Date.now()) + 1500) };
}

const pgChecksums = async (db: string) =>
  (
    await pg.psql(
      `select format('%s|%s|%s', c.relname, (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text,
        (xpath('/row/m/text()', query_to_xml(format('select md5(coalesce(string_agg(t::text, %L order by t::text), %L)) as m from %I.%I t', ',', '', n.nspname, c.relname), false, true, '')))[1]::text)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') order by 1`,
      db,
    )
  ).trim();

describe('a PostgreSQL backup exported to S3', () => {
  test('the ZIP opens with Python zipfile, its CSVs reload with identical counts and checksums, the link expires', async () => {
    const hostileRows = hostileTexts
      .map((text, i) => {
        const literal = `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n').replaceAll('\r', '\\r').replaceAll('\t', '\\t')}'`;
        return `(${i}, ${literal}, decode(repeat(lpad(to_hex(${i} * 19 % 256), 2, '0'), 3), 'hex') || '\\x00ff0a0d2c22'::bytea, ${i}.5, '{"k": "v,\\"\\n"}', '2026-01-01 00:00:00+00')`;
      })
      .join(',\n');
    await pg.psql('create database source');
    await pg.psql(
      `${PG_SCHEMA}
       insert into public.hostile values ${hostileRows}, (100, null, null, null, null, null), (101, '', ''::bytea, 0, 'null', null);
       insert into public.hostile select g, repeat('x', g % 50) || g, decode(md5(g::text), 'hex'), g, jsonb_build_object('g', g), now() from generate_series(1000, 3000) g;
       insert into public."odd ""schema"".""We, ird/Na\\me" values ('a,b', 1), (null, null), ('', 0);`,
      'source',
    );
    const repository = await initRepository(s3Url, s3Env);
    const snapshot = await runBackup({
      sourceUrl: `postgresql://postgres@${pg.host}:${pg.port}/source`,
      repository,
      type: 'full',
      env: { PGPASSWORD: pg.password },
    });

    const exported = await exportWithLink(repository, snapshot, 'exports/tenant/pg-1.zip', 5);
    assert.match(exported.location, /^s3:\/\/exports\/repo\/exports\/tenant\/pg-1\.zip$/);
    assert.ok(exported.link?.startsWith(s3.endpoint));
    const names = await downloadAndOpen(exported.link as string, join(workDir.path, 'pg'));
    assert.deepEqual(
      [...names].sort(),
      [
        'source/public.odd "schema"."We, ird%2FNa%5Cme.csv',
        'source/public.empty.csv',
        'source/public.hostile.csv',
      ].sort(),
    );
    assert.deepEqual(
      exported.objects.map((o) => `${o.name}:${o.records}`).sort(),
      [
        'source/public.odd "schema"."We, ird/Na\\me:3',
        'source/public.empty:0',
        `source/public.hostile:${hostileTexts.length + 2 + 2001}`,
      ].sort(),
    );

    await pg.psql('create database reloaded');
    await pg.psql(PG_SCHEMA, 'reloaded');
    const files = join(workDir.path, 'pg', 'files', 'source');
    const tables: Record<string, string> = {
      'public.hostile.csv': 'public.hostile',
      'public.empty.csv': 'public.empty',
      'public.odd "schema"."We, ird%2FNa%5Cme.csv': 'public."odd ""schema"".""We, ird/Na\\me"',
    };
    assert.deepEqual((await readdir(files)).sort(), Object.keys(tables).sort());
    for (const [file, table] of Object.entries(tables))
      await pg.psql(
        `\\copy ${table} from '${join(files, file).replaceAll("'", "''")}' with (format csv, header)`,
        'reloaded',
      );
    const source = await pgChecksums('source');
    assert.equal(await pgChecksums('reloaded'), source);
    assert.match(source, /hostile\|2016\|/);

    await exported.expire();
    await expectRefused(exported.link as string);

    const report = await check(repository, { readData: true });
    assert.deepEqual(
      [report.errors, report.damaged, report.leftovers.tempBlobs],
      [[], [], []],
      'check ignores exports/',
    );
    await prune(repository);
    assert.ok(await repository.storage.stat('exports/tenant/pg-1.zip'), 'prune leaves exports/ alone');
  });
});

/**
 * Reads RFC 4180 CSV with a parser of its own (Python's csv module cannot tell an unquoted empty field,
 * NULL, from `""`, the empty string): JSON rows, null for unquoted empty fields.
 */
const CSV_TO_JSON = `
import json, sys
data = open(sys.argv[1], encoding='utf-8', newline='').read()
rows, row, i, n = [], [], 0, len(data)
while i < n:
    if data[i] == '"':
        j, value = i + 1, []
        while True:
            k = data.index('"', j)
            value.append(data[j:k])
            if k + 1 < n and data[k + 1] == '"':
                value.append('"'); j = k + 2
            else:
                i = k + 1; break
        row.append(''.join(value))
    else:
        k = i
        while k < n and data[k] not in ',\\r': k += 1
        row.append(data[i:k] if k > i else None); i = k
    if i < n and data[i] == ',':
        i += 1
        continue
    assert data[i:i + 2] == '\\r\\n', (i, data[i:i + 10])
    rows.append(row); row = []; i += 2
print(json.dumps(rows))
`;

const MARIA_SCHEMA = `
create table hostile (id int primary key, t text, b blob, v varchar(200), d decimal(10,2));
create table \`We, ird/Na\\me\` (\`col, one\` text, \`col "two"\` int);
create table empty (id int, note text);
`;

const mariaLiteral = (text: string) => `CONVERT(X'${Buffer.from(text).toString('hex')}' USING utf8mb4)`;

describe('a MariaDB backup exported to Azure Blob Storage', () => {
  test('the ZIP opens with Python zipfile, its CSVs reload with identical counts and checksums, the SAS link expires', async () => {
    await maria.sql('create database shop character set utf8mb4');
    const rows = hostileTexts.map(
      (text, i) =>
        `(${i}, ${mariaLiteral(text)}, X'${Buffer.from([(i * 19) % 256, 0, 255, 10, 13, 44, 34, 92]).toString('hex')}', ${mariaLiteral(text.slice(0, 20))}, ${i}.25)`,
    );
    await maria.sql(
      `${MARIA_SCHEMA}
       insert into hostile values ${rows.join(',')}, (100, null, null, null, null), (101, '', '', '', 0);
       insert into \`We, ird/Na\\me\` values ('a,b', 1), (null, null), ('', 0);`,
      'shop',
    );
    const url = `azblob://exports/repo?endpoint=${azurite.blobEndpoint}`;
    const env = { AZURE_STORAGE_ACCOUNT: azurite.accountName, AZURE_STORAGE_KEY: azurite.accountKey };
    const repository = await initRepository(url, env);
    const snapshot = await runBackup({
      sourceUrl: `mysql://root@127.0.0.1:${maria.port}/shop`,
      repository,
      type: 'full',
      env: { MYSQL_PWD: maria.password },
    });
    const exported = await exportWithLink(repository, snapshot, 'exports/tenant/maria-1.zip', 5);
    assert.equal(exported.location, 'azblob://exports/repo/exports/tenant/maria-1.zip');
    const dir = join(workDir.path, 'maria');
    const names = await downloadAndOpen(exported.link as string, dir);
    assert.deepEqual([...names].sort(), ['shop/We, ird%2FNa%5Cme.csv', 'shop/empty.csv', 'shop/hostile.csv']);

    await maria.sql('create database reloaded character set utf8mb4');
    await maria.sql(MARIA_SCHEMA, 'reloaded');
    const tables: Record<string, string> = {
      'hostile.csv': 'hostile',
      'empty.csv': 'empty',
      'We, ird%2FNa%5Cme.csv': '`We, ird/Na\\me`',
    };
    for (const [file, table] of Object.entries(tables)) {
      const { stdout } = await run('python3', ['-c', CSV_TO_JSON, join(dir, 'files', 'shop', file)]);
      const [header, ...records] = JSON.parse(stdout) as (string | null)[][];
      assert.ok(header);
      if (records.length === 0) continue;
      const values = records.map(
        (record) =>
          `(${record
            .map((value, i) =>
              value === null ? 'NULL' : header[i] === 'b' ? `X'${value.replace(/^\\x/, '')}'` : mariaLiteral(value),
            )
            .join(', ')})`,
      );
      const columns = header.map((c) => `\`${String(c).replaceAll('`', '``')}\``).join(', ');
      await maria.sql(`insert into ${table} (${columns}) values ${values.join(', ')};`, 'reloaded');
    }
    const checksums = async (db: string) =>
      (await maria.sql('checksum table hostile, empty, `We, ird/Na\\me`', db)).replaceAll(`${db}.`, '');
    assert.equal(await checksums('reloaded'), await checksums('shop'));
    assert.equal(
      await maria.sql("select count(*), sum(t is null), sum(t = '') from hostile", 'reloaded'),
      await maria.sql("select count(*), sum(t is null), sum(t = '') from hostile", 'shop'),
    );
    assert.deepEqual(exported.objects.map((o) => `${o.name}:${o.records}`).sort(), [
      'shop/We, ird/Na\\me:3',
      'shop/empty:0',
      `shop/hostile:${hostileTexts.length + 2}`,
    ]);

    await exported.expire();
    await expectRefused(exported.link as string);
  });
});

describe('a volume backup exported in a filesystem repository', () => {
  test('the ZIP holds every file with its content, at a path in the repository, and there is no link', async () => {
    const volume = join(workDir.path, 'volume');
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('alpha\n'),
      'docs/grüße, "quoted".txt': Buffer.from('unicode name\n'),
      'docs/deep/empty': Buffer.alloc(0),
      'docs/deep/binary.bin': Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256)),
    };
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(volume, path, '..'), { recursive: true });
      await writeFile(join(volume, path), content);
    }
    const repoDir = join(workDir.path, 'file-repo');
    const url = `file://${repoDir}`;
    const repository = await initRepository(url, {});
    const snapshot = await runBackup({ sourceUrl: `file://${volume}`, repository, type: 'full', env: {} });
    const outcome = await runExport({
      repository,
      snapshot,
      kind: 'volume',
      key: 'exports/tenant/files-1.zip',
      expiresAfterMs: 3600_000,
    });
    assert.equal(outcome.link, undefined);
    assert.equal(outcome.location, join(repoDir, 'exports/tenant/files-1.zip'));
    assert.deepEqual(outcome.objects, [{ name: 'files', records: 4 }]);
    const extracted = join(workDir.path, 'volume-export');
    const script =
      'import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nz.extractall(sys.argv[2])\nprint(json.dumps(z.namelist()))';
    const { stdout } = await run('python3', ['-c', script, outcome.location, extracted]);
    assert.deepEqual((JSON.parse(stdout) as string[]).sort(), Object.keys(files).sort());
    for (const [path, content] of Object.entries(files))
      assert.ok((await readFile(join(extracted, path))).equals(content), path);
    const report = await check(repository, { readData: true });
    assert.deepEqual([report.errors, report.damaged, report.leftovers.tempBlobs], [[], [], []]);
  });
});

describe('an export whose upload fails', () => {
  test('fails naming the object, instead of waiting for ever on a ZIP nobody reads', async () => {
    const volume = join(workDir.path, 'volume-big');
    await mkdir(volume, { recursive: true });
    // More than the ZIP stream buffers: the writer must notice the reader is gone.
    await writeFile(join(volume, 'random.bin'), randomBytes(12 * 1024 * 1024));
    const repoDir = join(workDir.path, 'file-repo-blocked');
    const url = `file://${repoDir}`;
    const repository = await initRepository(url, {});
    const snapshot = await runBackup({ sourceUrl: `file://${volume}`, repository, type: 'full', env: {} });
    await writeFile(join(repoDir, 'exports'), 'a file where the exports folder would be');
    await assert.rejects(
      runExport({
        repository,
        snapshot,
        kind: 'volume',
        key: 'exports/tenant/blocked.zip',
        expiresAfterMs: 3600_000,
      }),
      /exports/,
    );
  });
});
