import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backup } from '../../api/kinds.ts';
import { cachedBackup, withoutManagedFields } from './cached.ts';

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
  assert.equal(cachedBackup(bare), bare);
});
