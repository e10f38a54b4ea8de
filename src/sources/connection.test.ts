import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectionSettings, lockWaitTimeoutSeconds, privateKeyFile } from './connection.ts';

test('connection settings: TLS mode, files, lock wait; bad values refused naming the variable', () => {
  assert.deepEqual(connectionSettings({}), { tls: {}, lockWaitTimeoutSeconds: 300 });
  assert.deepEqual(
    connectionSettings({
      TIDEMARK_DB_TLS_MODE: 'verify-ca',
      TIDEMARK_DB_TLS_CA: '/ca',
      TIDEMARK_DB_TLS_CERT: '/c',
      TIDEMARK_DB_TLS_KEY: '/k',
      TIDEMARK_LOCK_WAIT_TIMEOUT: '1m30s',
    }),
    { tls: { mode: 'verify-ca', ca: '/ca', cert: '/c', key: '/k' }, lockWaitTimeoutSeconds: 90 },
  );
  assert.throws(
    () => connectionSettings({ TIDEMARK_DB_TLS_MODE: 'on' }),
    /TIDEMARK_DB_TLS_MODE on: use one of disable/,
  );
  assert.throws(() => connectionSettings({ TIDEMARK_DB_TLS_CERT: '/c' }), /needs both TIDEMARK_DB_TLS_CERT and/);
  assert.equal(lockWaitTimeoutSeconds('45'), 45);
  assert.throws(() => lockWaitTimeoutSeconds('0'), /at least one second/);
  assert.throws(() => lockWaitTimeoutSeconds('soon'), /invalid duration "soon"/);
});

test('a client key others may read is copied to a private file; a private one is used in place', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-key-'));
  try {
    const key = join(dir, 'tls.key');
    writeFileSync(key, 'KEY');
    chmodSync(key, 0o600);
    assert.equal(privateKeyFile(key), key);
    chmodSync(key, 0o440); // as a Secret volume with fsGroup
    const copy = privateKeyFile(key);
    assert.notEqual(copy, key);
    assert.equal(readFileSync(copy, 'utf8'), 'KEY');
    assert.equal(statSync(copy).mode & 0o777, 0o600);
    rmSync(join(copy, '..'), { recursive: true });
    assert.throws(() => privateKeyFile(join(dir, 'missing.key')), /client key .*missing.key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the private copy of a client key is gone once the process that made it exits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-key-'));
  try {
    const key = join(dir, 'tls.key');
    writeFileSync(key, 'KEY');
    chmodSync(key, 0o440);
    const module = new URL('./connection.ts', import.meta.url).href;
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { privateKeyFile } from ${JSON.stringify(module)}; console.log(privateKeyFile(${JSON.stringify(key)}));`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    const copy = child.stdout.trim();
    assert.notEqual(copy, key);
    assert.equal(existsSync(copy), false, `${copy} is left behind`);
    assert.equal(existsSync(join(copy, '..')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
