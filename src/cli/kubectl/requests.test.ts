import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupPolicy, RestoreRequest } from '../../api/kinds.ts';
import { approvalPatch, onDemandBackup, pickSources, restoreRequest } from './requests.ts';

const policy = {
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'BackupPolicy',
  metadata: { name: 'nightly', namespace: 'tenants' },
  spec: {
    sources: [{ name: 'documents', volume: { claimName: 'documents' } }],
    schedule: { full: { cron: '0 1 * * *' } },
    repository: 'primary',
  },
} as BackupPolicy;

test('an on-demand Backup carries the labels of scheduled ones and no scheduledTime', () => {
  const backup = onDemandBackup(policy, 'documents', 'full');
  assert.deepEqual(backup.metadata, {
    generateName: 'nightly-documents-now-',
    namespace: 'tenants',
    labels: { 'tidemark.dev/policy': 'nightly', 'tidemark.dev/source': 'documents' },
  });
  assert.deepEqual(backup.spec, { policy: 'nightly', source: 'documents', type: 'full' });
});

test('a source the policy does not have is NotFound, naming the ones it has', () => {
  assert.deepEqual(pickSources(policy, undefined), ['documents']);
  assert.throws(() => pickSources(policy, 'orders'), {
    code: 'NotFound',
    message: /has no source orders \(it has documents\)/,
  });
});

test('restore flags become a RestoreRequest: latest or a point in time, one target, requested by the caller', () => {
  const latest = restoreRequest('tenants', { policy: 'nightly', source: 'documents', toVolume: 'restored' }, 'alice');
  assert.deepEqual(latest.spec, {
    from: { policy: 'nightly', source: 'documents' },
    target: { volume: { claimName: 'restored' } },
    mode: 'refuse',
    requestedBy: 'alice',
  });
  const pointInTime = restoreRequest('tenants', {
    policy: 'nightly',
    source: 'orders',
    before: '2026-03-30T01:30:00+02:00',
    toPostgres: 'pg-qa/orders_copy',
    mode: 'replace',
  });
  assert.equal(pointInTime.spec.requestedBy, undefined);
  assert.deepEqual(pointInTime.spec.from, { policy: 'nightly', source: 'orders', before: '2026-03-29T23:30:00.000Z' });
  assert.deepEqual(pointInTime.spec.target, {
    postgres: { connectionSecret: { name: 'pg-qa' }, database: 'orders_copy' },
  });
});

test('restore flags that do not say one thing are refused before anything is created', () => {
  const refused = (flags: Parameters<typeof restoreRequest>[1], message: RegExp) =>
    assert.throws(() => restoreRequest('tenants', flags), { code: 'InvalidArgument', message });
  refused({ toOriginal: true }, /--policy with --source/);
  refused({ policy: 'p', backup: 'b', toOriginal: true }, /--policy with --source/);
  refused({ policy: 'p', toOriginal: true }, /--policy needs --source/);
  refused({ backup: 'b', before: '2026-01-01T00:00:00Z', toOriginal: true }, /leave out --source and --before/);
  refused({ policy: 'p', source: 's', before: 'yesterday', toOriginal: true }, /--before yesterday is not a time/);
  refused({ policy: 'p', source: 's' }, /exactly one target/);
  refused({ policy: 'p', source: 's', toOriginal: true, toVolume: 'v' }, /exactly one target/);
  refused({ policy: 'p', source: 's', toPostgres: 'only-a-secret' }, /<connection Secret>\/<database>/);
  refused({ policy: 'p', source: 's', toOriginal: true, mode: 'merge' }, /--mode merge/);
});

test('an approval is appended, recording only the approver groups the rule names', () => {
  const request = {
    spec: { approvals: [{ user: 'bob' }] },
    status: { approverGroups: ['dba', 'sre'] },
  } as unknown as RestoreRequest;
  assert.deepEqual(approvalPatch(request, { user: 'carol', groups: ['system:authenticated', 'sre'] }, 'ok'), [
    { op: 'add', path: '/spec/approvals/-', value: { user: 'carol', groups: ['sre'], comment: 'ok' } },
  ]);
  const first = { spec: {}, status: { approverUsers: ['carol'] } } as unknown as RestoreRequest;
  assert.deepEqual(approvalPatch(first, { user: 'carol', groups: ['system:authenticated'] }, undefined), [
    { op: 'add', path: '/spec/approvals', value: [{ user: 'carol' }] },
  ]);
});
