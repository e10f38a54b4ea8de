import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import { isJobOf, ownerKeysOf, podCannotStart } from './agent-result.ts';
import { OWNER_ANNOTATIONS } from './labels.ts';

const backup = { kind: 'Backup', metadata: { name: 'nightly', namespace: 'tenants', uid: 'uid-new' } };

describe('which Jobs belong to an object', () => {
  const owned = (uid: string): k8s.V1Job => ({
    metadata: {
      name: 'nightly',
      namespace: 'tenants',
      ownerReferences: [{ apiVersion: 'tidemark.dev/v1alpha1', kind: 'Backup', name: 'nightly', uid }],
    },
  });

  test('by owner uid, never by name: the Job of an earlier object of the same name is not its Job', () => {
    assert.equal(isJobOf(owned('uid-new'), backup), true);
    assert.equal(isJobOf(owned('uid-old'), backup), false);
  });

  test('a forget Job without owner reference is found by its owner annotations', () => {
    const forget: k8s.V1Job = {
      metadata: {
        name: 'nightly-forget-primary',
        namespace: 'tenants',
        annotations: {
          [OWNER_ANNOTATIONS.kind]: 'Backup',
          [OWNER_ANNOTATIONS.name]: 'nightly',
          [OWNER_ANNOTATIONS.uid]: 'uid-new',
        },
      },
    };
    assert.equal(isJobOf(forget, backup), true);
    assert.deepEqual(ownerKeysOf(forget, 'Backup'), ['tenants/nightly']);
    assert.deepEqual(ownerKeysOf(forget, 'RestoreRequest'), []);
    assert.deepEqual(ownerKeysOf(owned('uid-old'), 'Backup'), ['tenants/nightly']);
  });
});

describe('podCannotStart', () => {
  const now = new Date('2026-11-23T09:00:00Z');
  const pod = (reason: string, created: string, phase = 'Pending'): k8s.V1Pod => ({
    metadata: { name: 'nightly-abc', creationTimestamp: new Date(created) },
    status: {
      phase,
      containerStatuses: [
        {
          name: 'agent',
          image: 'tidemark',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason, message: 'env PGPASSWORD: key "password" of secret "pg" not found' } },
        },
      ],
    },
  });

  test('a pod waiting with CreateContainerConfigError longer than the timeout cannot start; the message names Secret and key', () => {
    const message = podCannotStart([pod('CreateContainerConfigError', '2026-11-23T08:57:00Z')], now, 120_000);
    assert.match(message ?? '', /CreateContainerConfigError: .*key "password" of secret "pg"/);
  });

  test('not before the timeout, and not for reasons a pod gets out of by itself', () => {
    assert.equal(podCannotStart([pod('CreateContainerConfigError', '2026-11-23T08:59:00Z')], now, 120_000), undefined);
    assert.equal(podCannotStart([pod('ContainerCreating', '2026-11-23T08:00:00Z')], now, 120_000), undefined);
    for (const reason of ['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerError'])
      assert.ok(podCannotStart([pod(reason, '2026-11-23T08:00:00Z')], now, 120_000), reason);
  });
});
