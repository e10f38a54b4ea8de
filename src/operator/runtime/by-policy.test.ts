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
