import assert from 'node:assert/strict';
import { test } from 'node:test';
import { audit } from './audit.ts';

const envOf = (vars: { name: string; value?: string }[]) => Object.fromEntries(vars.map((v) => [v.name, v.value]));

test('what the operator writes for an audit Job is what the agent reads back', () => {
  const env = {
    ...envOf(audit.jobEnv({ snapshotId: 'ab'.repeat(32), timestampColumns: { 'public.orders': 'placed' } })),
    TIDEMARK_SOURCE: 'file:///data',
    TIDEMARK_EXCLUDES: '["*.tmp"]',
  };
  assert.deepEqual(audit.input(env), {
    sourceUrl: 'file:///data',
    allDatabases: false,
    excludes: ['*.tmp'],
    snapshot: 'ab'.repeat(32),
    timestampColumns: { 'public.orders': 'placed' },
  });
});

test('timestamp columns that are not a map of names are refused, naming the variable', () => {
  const base = { TIDEMARK_SOURCE: 'file:///data', TIDEMARK_SNAPSHOT: 'abc' };
  for (const bad of ['{', '["a"]', '{"t": 1}'])
    assert.throws(() => audit.input({ ...base, TIDEMARK_TIMESTAMP_COLUMNS: bad }), {
      code: 'InvalidArgument',
      message: /TIDEMARK_TIMESTAMP_COLUMNS/,
    });
  assert.throws(() => audit.input({ TIDEMARK_SOURCE: 'file:///data' }), { message: /TIDEMARK_SNAPSHOT is not set/ });
});
