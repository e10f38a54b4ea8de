import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logDigest } from './failure-report.ts';

const line = (level: number, event: string, msg: string, second: number) =>
  JSON.stringify({ level, time: `2026-12-03T20:33:${String(second).padStart(2, '0')}.000Z`, event, msg });

test('a log digest keeps the last warnings and errors, then the last lines not already shown', () => {
  const log = [
    line(40, 'early-warning', 'dropped: only the last two warnings are kept', 1),
    line(30, 'started', 'controllers running', 2),
    line(40, 'RepositoryNotReady', 'primary is not initialised yet', 3),
    'a line that is not JSON',
    line(50, 'reconcile-failed', 'Backup tenants/b: connection refused', 4),
    line(30, 'BackupStarted', 'Backup tenants/b started', 5),
    '',
  ].join('\n');
  assert.deepEqual(logDigest(log, 2, 3), [
    'warnings and errors:',
    '20:33:03.000 WARN RepositoryNotReady: primary is not initialised yet',
    '20:33:04.000 ERROR reconcile-failed: Backup tenants/b: connection refused',
    'last lines:',
    'a line that is not JSON',
    '20:33:05.000 info BackupStarted: Backup tenants/b started',
  ]);
  assert.deepEqual(logDigest(''), ['no warnings or errors']);
});
