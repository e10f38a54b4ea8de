import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyLogFields, objectLogFields } from './log-fields.ts';

test('a Backup logs its namespace, policy, source and name', () => {
  assert.deepEqual(
    objectLogFields({
      kind: 'Backup',
      metadata: { name: 'nightly-orders-full-20260330t0100z', namespace: 'tenants' },
      spec: { policy: 'nightly', source: 'orders', type: 'full' },
    }),
    { namespace: 'tenants', backup: 'nightly-orders-full-20260330t0100z', policy: 'nightly', source: 'orders' },
  );
});

test('a RestoreRequest logs what it restores: policy and source, and the Backup once known', () => {
  assert.deepEqual(
    objectLogFields({
      kind: 'RestoreRequest',
      metadata: { name: 'orders-qa', namespace: 'tenants' },
      spec: { from: { policy: 'nightly', source: 'orders' } },
      status: { backupName: 'nightly-orders-full-20260330t0100z' },
    }),
    {
      namespace: 'tenants',
      restoreRequest: 'orders-qa',
      policy: 'nightly',
      source: 'orders',
      backup: 'nightly-orders-full-20260330t0100z',
    },
  );
});

test('policies and repositories log their own name under their field; other kinds under name', () => {
  assert.deepEqual(objectLogFields({ kind: 'BackupPolicy', metadata: { name: 'nightly', namespace: 't' } }), {
    namespace: 't',
    policy: 'nightly',
  });
  assert.deepEqual(objectLogFields({ kind: 'Lease', metadata: { name: 'tidemark', namespace: 'sys' } }), {
    namespace: 'sys',
    name: 'tidemark',
  });
});

test('a reconcile key names the object under the field of its controller’s kind', () => {
  assert.deepEqual(keyLogFields('backuppolicy', 'tenants/nightly'), { namespace: 'tenants', policy: 'nightly' });
  assert.deepEqual(keyLogFields('catalog', 'tenants/primary'), { namespace: 'tenants', repository: 'primary' });
  assert.deepEqual(keyLogFields('backup', 'cluster-scoped'), { backup: 'cluster-scoped' });
});
