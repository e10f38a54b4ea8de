import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globMatcher } from './glob.ts';

test('a pattern without a slash matches the name in any directory', () => {
  const match = globMatcher(['*.tmp']);
  assert.ok(match('a.tmp'));
  assert.ok(match('docs/deep/a.tmp'));
  assert.ok(!match('a.tmpx'));
});

test('** spans directories, * stays within one, ? is one character', () => {
  assert.ok(globMatcher(['cache/**'])('cache/x/y'));
  assert.ok(!globMatcher(['cache/**'])('docs/cache/x'));
  assert.ok(globMatcher(['**/cache/**'])('docs/cache/x'));
  assert.ok(globMatcher(['docs/*.log'])('docs/a.log'));
  assert.ok(!globMatcher(['docs/*.log'])('docs/sub/a.log'));
  assert.ok(globMatcher(['file-?.bin'])('file-1.bin'));
  assert.ok(!globMatcher(['file-?.bin'])('file-10.bin'));
});
