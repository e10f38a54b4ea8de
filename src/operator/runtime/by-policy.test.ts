import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backup } from '../../api/kinds.ts';
import { BackupsByPolicy } from './by-policy.ts';

const backup = (namespace: string, policy: string, name: string, phase?: 'Succeeded'): Backup => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'Backup',
  metadata: { name, namespace },
  spec: { policy, source: 'db' },
  ...(phase ? { status: { phase } } : {}),
});

const names = (backups: Backup[]) => backups.map((b) => b.metadata.name).sort();

test("a policy's Backups are those naming it in its namespace; an update replaces, a delete removes", () => {
  const index = new BackupsByPolicy();
  index.put(backup('a', 'nightly', 'n-1'));
  index.put(backup('a', 'nightly', 'n-2'));
  index.put(backup('a', 'hourly', 'h-1'));
  index.put(backup('b', 'nightly', 'other-namespace'));
  assert.deepEqual(names(index.of('a', 'nightly')), ['n-1', 'n-2']);
  assert.deepEqual(names(index.of('b', 'nightly')), ['other-namespace']);

  index.put(backup('a', 'nightly', 'n-1', 'Succeeded'));
  assert.equal(index.of('a', 'nightly').find((b) => b.metadata.name === 'n-1')?.status?.phase, 'Succeeded');
  assert.equal(index.of('a', 'nightly').length, 2);

  index.remove(backup('a', 'nightly', 'n-1'));
  index.remove(backup('a', 'nightly', 'n-2'));
  index.remove(backup('a', 'nightly', 'never-seen'));
  assert.deepEqual(index.of('a', 'nightly'), []);
  assert.deepEqual(names(index.of('a', 'hourly')), ['h-1']);
  assert.deepEqual(index.of('c', 'none'), []);
});

test("a group's array stays the same object until one of its Backups changes; policyOf names a Backup's policy", () => {
  const index = BackupsByPolicy.from([backup('a', 'nightly', 'n-1'), backup('a', 'hourly', 'h-1')]);
  const groupOf = (policy: string) => [...index.groups()].find((g) => g.policy === policy);
  const nightly = groupOf('nightly')?.backups;
  const hourly = groupOf('hourly')?.backups;
  assert.equal(groupOf('nightly')?.backups, nightly, 'unchanged: the same array');

  index.put(backup('a', 'nightly', 'n-2'));
  assert.notEqual(groupOf('nightly')?.backups, nightly, 'a Backup added: a new array');
  assert.deepEqual(names([...(groupOf('nightly')?.backups ?? [])]), ['n-1', 'n-2']);
  assert.equal(groupOf('hourly')?.backups, hourly, "another policy's group is untouched");

  const beforeUpdate = groupOf('nightly')?.backups;
  index.put(backup('a', 'nightly', 'n-2', 'Succeeded'));
  assert.notEqual(groupOf('nightly')?.backups, beforeUpdate, 'a Backup replaced: a new array');

  const beforeRemove = groupOf('nightly')?.backups;
  index.remove(backup('a', 'nightly', 'never-seen'));
  assert.equal(groupOf('nightly')?.backups, beforeRemove, 'nothing removed: the same array');
  index.remove(backup('a', 'nightly', 'n-1'));
  assert.deepEqual(names([...(groupOf('nightly')?.backups ?? [])]), ['n-2']);

  assert.equal(index.policyOf('a', 'n-2'), 'nightly');
  assert.equal(index.policyOf('a', 'h-1'), 'hourly');
  assert.equal(index.policyOf('b', 'n-2'), undefined, 'another namespace');
  assert.equal(index.policyOf('a', 'n-1'), undefined, 'removed');
});
