import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WaitFailed, waitUntil } from './process.ts';

test('waitUntil retries a check that throws, and fails at once on WaitFailed, naming what it waited for', async () => {
  let calls = 0;
  await waitUntil(
    'the third call',
    async () => {
      calls++;
      if (calls < 3) throw new Error('not yet');
      return true;
    },
    { timeoutMs: 5000, intervalMs: 1 },
  );
  assert.equal(calls, 3);

  await assert.rejects(
    waitUntil(
      'Backup b succeeded',
      async () => {
        throw new WaitFailed('Backup b failed: disk full');
      },
      { timeoutMs: 2000, intervalMs: 1 },
    ),
    /^Error: Backup b succeeded: Backup b failed: disk full$/,
  );
});
