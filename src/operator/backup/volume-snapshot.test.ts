// The VolumeSnapshot step of a volume source with volumeSnapshotClassName, without a cluster.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { Source } from '../../api/backuppolicy.ts';
import type { Backup } from '../../api/kinds.ts';
import { sourceAccess } from '../jobs/access.ts';
import {
  type VolumeSnapshot,
  type VolumeSnapshotObserved,
  volumeSnapshotName,
  volumeSnapshotStep,
} from './volume-snapshot.ts';

const now = new Date('2026-11-23T09:00:00Z');
const backup: Backup = {
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'Backup',
  metadata: { name: 'b-1', namespace: 'tenants', uid: 'uid-1' },
  spec: { policy: 'p', source: 'documents', type: 'full' },
};
const [SNAP0, SNAP1] = [volumeSnapshotName(backup, 0), volumeSnapshotName(backup, 1)];
const source: Source = { name: 'documents', volume: { claimName: 'documents', volumeSnapshotClassName: 'csi' } };
const pvc: k8s.V1PersistentVolumeClaim = {
  metadata: { name: 'documents' },
  spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'disk', resources: { requests: { storage: '5Gi' } } },
};
const snapshot = (status: VolumeSnapshot['status'], created = '2026-11-23T08:59:00Z'): VolumeSnapshot => ({
  apiVersion: 'snapshot.storage.k8s.io/v1',
  kind: 'VolumeSnapshot',
  metadata: { name: SNAP0, creationTimestamp: created as unknown as Date },
  spec: { volumeSnapshotClassName: 'csi', source: { persistentVolumeClaimName: 'documents' } },
  ...(status ? { status } : {}),
});
const observed = (o: Partial<VolumeSnapshotObserved> = {}): VolumeSnapshotObserved => ({
  apiInstalled: true,
  snapshots: new Map(),
  restoredClaims: new Map(),
  sourceClaims: new Map([['documents', pvc]]),
  ...o,
});

describe('volumeSnapshotStep', () => {
  test('without the snapshot API the run fails saying what is missing', () => {
    const step = volumeSnapshotStep(backup, source, ['documents'], observed({ apiInstalled: false }), now);
    assert.equal(step.kind, 'failed');
    assert.match(
      step.kind === 'failed' ? step.message : '',
      /does not serve the VolumeSnapshot API \(snapshot\.storage\.k8s\.io\/v1\)/,
    );
  });

  test('first a VolumeSnapshot of each PVC with the class, owned by the Backup; the run waits', () => {
    const step = volumeSnapshotStep(backup, source, ['documents'], observed(), now);
    assert.equal(step.kind, 'waiting');
    const [created] = step.kind === 'waiting' ? step.create : [];
    assert.deepEqual((created as VolumeSnapshot).spec, {
      volumeSnapshotClassName: 'csi',
      source: { persistentVolumeClaimName: 'documents' },
    });
    assert.equal(created?.metadata?.ownerReferences?.[0]?.uid, 'uid-1');
  });

  test('while not ready it waits, naming the snapshot; too long, or an error, fails the run', () => {
    const waiting = volumeSnapshotStep(
      backup,
      source,
      ['documents'],
      observed({ snapshots: new Map([[SNAP0, snapshot({ readyToUse: false })]]) }),
      now,
    );
    assert.deepEqual(waiting, {
      kind: 'waiting',
      message: `VolumeSnapshot ${SNAP0} of PVC documents (class csi) is not ready to use yet`,
      create: [],
    });
    const late = snapshot(undefined, '2026-11-23T08:40:00Z');
    assert.equal(
      volumeSnapshotStep(backup, source, ['documents'], observed({ snapshots: new Map([[SNAP0, late]]) }), now).kind,
      'failed',
    );
    const broken = snapshot({ error: { message: 'driver said no' } });
    const step = volumeSnapshotStep(
      backup,
      source,
      ['documents'],
      observed({ snapshots: new Map([[SNAP0, broken]]) }),
      now,
    );
    assert.match(step.kind === 'failed' ? step.message : '', /driver said no/);
  });

  test('once ready a PVC is restored from it with the source claim class and the snapshot size; the Job reads it', () => {
    const ready = snapshot({ readyToUse: true, restoreSize: '3Gi' });
    const step = volumeSnapshotStep(
      backup,
      source,
      ['documents'],
      observed({ snapshots: new Map([[SNAP0, ready]]) }),
      now,
    );
    assert.equal(step.kind, 'ready');
    if (step.kind !== 'ready') return;
    assert.deepEqual([...step.readFrom], [['documents', SNAP0]]);
    const claim = step.create[0] as k8s.V1PersistentVolumeClaim;
    assert.deepEqual(claim.spec, {
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'disk',
      resources: { requests: { storage: '3Gi' } },
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: SNAP0 },
    });
  });

  test('a missing source PVC fails the run', () => {
    const step = volumeSnapshotStep(backup, source, ['documents'], observed({ sourceClaims: new Map() }), now);
    assert.equal(step.kind, 'failed');
  });
});

test('the backup Job mounts each restored PVC read-only where its source claim would be', () => {
  const several: Source = {
    name: 'documents',
    volume: { selector: { matchLabels: { app: 'docs' } }, volumeSnapshotClassName: 'csi' },
  };
  const access = sourceAccess(
    several,
    ['a', 'b'],
    new Map([
      ['a', SNAP0],
      ['b', SNAP1],
    ]),
  );
  assert.deepEqual(
    access.volumes.map((v) => v.persistentVolumeClaim),
    [
      { claimName: SNAP0, readOnly: true },
      { claimName: SNAP1, readOnly: true },
    ],
  );
  assert.deepEqual(
    access.volumeMounts.map((m) => [m.mountPath, m.readOnly]),
    [
      ['/data/a', true],
      ['/data/b', true],
    ],
  );
});

test('snapshot names are per Backup instance: a re-created Backup of the same name gets new ones', () => {
  const again = { ...backup, metadata: { ...backup.metadata, uid: 'uid-2' } };
  assert.notEqual(volumeSnapshotName(again, 0), SNAP0);
});
