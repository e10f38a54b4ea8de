import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

test('takes the tools from the first PATH directory that has pg_dump, reads its version, finds stdbuf', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-pgtools-'));
  try {
    for (const name of ['pg_dump', 'pg_dumpall', 'psql']) {
      await writeFile(join(dir, name), '#!/bin/sh\necho "pg_dump (PostgreSQL) 16.4"\n');
      await chmod(join(dir, name), 0o755);
    }
    assert.equal((await findTools(dir)).stdbuf, undefined);
    await writeFile(join(dir, 'stdbuf'), '');
    const tools = await findTools(`${dir}:/usr/bin`);
    assert.deepEqual(tools, {
      pgDump: join(dir, 'pg_dump'),
      pgDumpAll: join(dir, 'pg_dumpall'),
      psql: join(dir, 'psql'),
      pgDumpVersion: 160004,
      stdbuf: join(dir, 'stdbuf'),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
