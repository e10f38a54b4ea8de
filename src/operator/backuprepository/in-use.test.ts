// The in-use finalizer of a BackupRepository, without a cluster.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { s3Repository } from '../testing/objects.ts';
import { decideInUse, repositoryUsers } from './in-use.ts';

const ns = 'tenants';
const policy = (name: string, repository: string, replicas: string[] = [], deleting = false): BackupPolicy => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'BackupPolicy',
  metadata: { name, namespace: ns, ...(deleting ? { deletionTimestamp: '2026-11-23T09:00:00Z' } : {}) },
  spec: {
    sources: [],
    schedule: { full: { every: '1d' } },
    repository,
    replicas: replicas.map((r) => ({ repository: r, region: 'eu' })),
  } as unknown as BackupPolicy['spec'],
});
const deleting = (r: BackupRepository): BackupRepository => ({
  ...r,
  metadata: { ...r.metadata, deletionTimestamp: '2026-11-23T09:00:00Z' },
});

describe('decideInUse', () => {
  test('policies using a repository as primary or replica are named; deleting ones are not', () => {
    const policies = [policy('b', 'primary'), policy('a', 'other', ['primary']), policy('c', 'primary', [], true)];
    assert.deepEqual(repositoryUsers(s3Repository('primary', ns), policies), ['a (replica)', 'b (primary)']);
  });

  test('a used repository holds the finalizer; deleting it waits with a condition and an event naming them', () => {
    const used = decideInUse({
      repository: s3Repository('primary', ns),
      policies: [policy('p', 'primary')],
      namespaceTerminating: false,
    });
    assert.equal(used.finalizer, true);
    assert.equal(used.condition.reason, 'UsedByPolicies');
    assert.equal(used.event, undefined);
    const blocked = decideInUse({
      repository: deleting(s3Repository('primary', ns)),
      policies: [policy('p', 'primary')],
      namespaceTerminating: false,
    });
    assert.equal(blocked.finalizer, true);
    assert.deepEqual(
      [blocked.condition.type, blocked.condition.status, blocked.condition.reason],
      ['InUse', 'True', 'DeletionBlocked'],
    );
    assert.match(blocked.condition.message ?? '', /p \(primary\)/);
    assert.equal(blocked.event?.reason, 'DeletionBlocked');
  });

  test('the event is not repeated while the same policies hold the deletion', () => {
    const repository = deleting(s3Repository('primary', ns));
    const first = decideInUse({ repository, policies: [policy('p', 'primary')], namespaceTerminating: false });
    repository.status = { conditions: [{ ...first.condition, lastTransitionTime: '2026-11-23T09:00:00Z' }] };
    assert.equal(
      decideInUse({ repository, policies: [policy('p', 'primary')], namespaceTerminating: false }).event,
      undefined,
    );
  });

  test('unused, or in a namespace being deleted, the finalizer goes', () => {
    assert.equal(
      decideInUse({ repository: deleting(s3Repository('primary', ns)), policies: [], namespaceTerminating: false })
        .finalizer,
      false,
    );
    const gone = decideInUse({
      repository: deleting(s3Repository('primary', ns)),
      policies: [policy('p', 'primary')],
      namespaceTerminating: true,
    });
    assert.equal(gone.finalizer, false);
    assert.equal(gone.condition.reason, 'NamespaceDeleted');
  });
});
