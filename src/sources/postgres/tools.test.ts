import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { findTools, formatMajor, majorOf, parseToolVersion } from './tools.ts';

test('reads pg_dump versions old and new', () => {
  assert.equal(parseToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n'), 150018);
  assert.equal(parseToolVersion('pg_dump (PostgreSQL) 9.6.24\n'), 90624);
  assert.equal(parseToolVersion('pg_dump (PostgreSQL) 17devel\n'), 170000);
  assert.equal(parseToolVersion('something else'), undefined);
});

test('compares and prints major versions as PostgreSQL numbers them', () => {
  assert.equal(majorOf(150018), 150000);
  assert.equal(majorOf(90624), 90600);
  assert.ok(majorOf(150018) < majorOf(160002));
  assert.ok(majorOf(90624) < majorOf(100000));
  assert.equal(formatMajor(160002), '16');
  assert.equal(formatMajor(90624), '9.6');
});

test('takes the tools from the directory with the newest pg_dump, whatever the PATH order; finds stdbuf', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tidemark-pgtools-'));
  const fake = async (name: string, version: string) => {
    const dir = join(root, name);
    await mkdir(dir);
    for (const tool of ['pg_dump', 'pg_dumpall', 'psql']) {
      await writeFile(join(dir, tool), `#!/bin/sh\necho "pg_dump (PostgreSQL) ${version}"\n`);
      await chmod(join(dir, tool), 0o755);
    }
    return dir;
  };
  try {
    const older = await fake('older', '13.2');
    const newer = await fake('newer', '99.4');
    assert.equal((await findTools(newer)).stdbuf, undefined);
    await writeFile(join(older, 'stdbuf'), '');
    const tools = await findTools(`${older}:${newer}:/usr/bin`);
    assert.deepEqual(tools, {
      pgDump: join(newer, 'pg_dump'),
      pgDumpAll: join(newer, 'pg_dumpall'),
      psql: join(newer, 'psql'),
      pgDumpVersion: 990004,
      stdbuf: join(older, 'stdbuf'),
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
