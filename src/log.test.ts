import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../test/harness/tools.ts';
import { logFields } from './log.ts';

test('a log line has an ISO-8601 time and the fields the agent Job names', async () => {
  // A probe without a repository fails at once and logs why: one line to read.
  const stderr = await new Promise<string>((resolve) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'agent', 'probe'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          TIDEMARK_LOG_FIELDS: JSON.stringify({ namespace: 'tenants', policy: 'nightly', source: 'orders' }),
        },
      },
      (_error, _stdout, err) => resolve(String(err)),
    ),
  );
  const line = JSON.parse(stderr.split('\n').find((l) => l.startsWith('{')) ?? '{}') as Record<string, unknown>;
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(line.event, 'probe-failed');
  assert.deepEqual([line.namespace, line.policy, line.source], ['tenants', 'nightly', 'orders']);
});

test('fields that are not a JSON object of strings are left out, never fatal', () => {
  assert.equal(logFields(undefined), undefined);
  assert.equal(logFields('not json'), undefined);
  assert.equal(logFields('["a"]'), undefined);
  assert.deepEqual(logFields('{"policy":"nightly","count":3}'), { policy: 'nightly' });
});
