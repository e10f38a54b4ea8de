import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backup } from '../../api/kinds.ts';
import { cachedBackup, SharedStrings, withoutManagedFields } from './cached.ts';

const backup = (): Backup => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'Backup',
  metadata: {
    name: 'nightly-db-full-20261201t0100z',
    namespace: 'shop',
    resourceVersion: '7',
    managedFields: [{ manager: 'tidemark', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: {} }],
  } as Backup['metadata'],
  spec: { policy: 'nightly', source: 'db' },
  status: {
    phase: 'Succeeded',
    snapshotId: 'abc',
    objects: [{ name: 'public.orders', records: 10 }],
    skipped: [{ name: 'public.locked', reason: 'lock wait timeout' }],
    repositories: [{ repository: 'primary', role: 'primary', state: 'Succeeded', snapshotId: 'abc' }],
  },
});

test('a cached Backup keeps everything but its record counts and managedFields, and the original is untouched', () => {
  const original = backup();
  const cached = cachedBackup(original);
  const { objects: _, ...status } = original.status ?? {};
  const { managedFields: __, ...metadata } = original.metadata as Backup['metadata'] & { managedFields?: unknown };
  assert.deepEqual(cached, { ...original, metadata, status });
  assert.equal(original.status?.objects?.length, 1);
  assert.ok((original.metadata as { managedFields?: unknown }).managedFields);
});

test('an object without managedFields or status is kept as it is', () => {
  const bare: Backup = { ...backup(), metadata: { name: 'b', namespace: 'shop' } };
  delete bare.status;
  assert.equal(withoutManagedFields(bare), bare);
  assert.deepEqual(cachedBackup(bare), bare);
});

test('a cached Backup with conditions, labels, finalizers and replicas reads as the Backup did', () => {
  const original: Backup = {
    ...backup(),
    metadata: {
      name: 'nightly-db-full-20261201t0100z',
      namespace: 'shop',
      creationTimestamp: '2026-12-01T01:00:00Z',
      labels: { 'tidemark.dev/policy': 'nightly', 'tidemark.dev/source': 'db' },
      finalizers: ['tidemark.dev/snapshot'],
    },
    spec: { policy: 'nightly', source: 'db', type: 'incremental', scheduledTime: '2026-12-01T01:00:00Z' },
    status: {
      phase: 'Succeeded',
      conditions: [
        {
          type: 'Succeeded',
          status: 'True',
          reason: 'Completed',
          message: 'snapshot abc',
          lastTransitionTime: '2026-12-01T01:02:00Z',
        },
      ],
      completionTime: '2026-12-01T01:02:00Z',
      snapshotId: 'abc',
      size: '1.0 GiB',
      repositories: [
        {
          repository: 'primary',
          role: 'primary',
          state: 'Succeeded',
          snapshotId: 'abc',
          completionTime: '2026-12-01T01:02:00Z',
        },
        { repository: 'dr', role: 'replica', state: 'Failed', message: 'denied', attempts: 2 },
      ],
    },
  };
  const copy = structuredClone(original);
  assert.deepEqual(cachedBackup(original), original);
  assert.deepEqual(original, copy);
});

test('shared strings give back the value they are given, and their table stays within its limit', () => {
  const strings = new SharedStrings(3);
  for (const value of ['a', 'b', 'a', 'c', 'd', 'e', 'b']) assert.equal(strings.of(value), value);
  assert.equal(strings.of(undefined), undefined);
  assert.ok(strings.size <= 3, `table of ${strings.size}`);
  const record = { name: 'x', count: 2, phase: 'Succeeded' };
  const shared = strings.in(record, ['name', 'count', 'phase']);
  assert.deepEqual(shared, record);
  assert.notEqual(shared, record);
});
