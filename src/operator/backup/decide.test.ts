// The Backup controller's decision for retention per repository and deletion, without a cluster.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/result.ts';
import type { Backup, BackupPolicy } from '../../api/kinds.ts';
import { s3Repository } from '../testing/objects.ts';
import {
  type BackupObserved,
  decideBackup,
  IMPORTED_FROM,
  type JobObserved,
  RETIRED_ANNOTATION,
  SNAPSHOT_FINALIZER,
} from './decide.ts';
import { FORGET_ANNOTATION, FORGET_BY_RETENTION } from './deletion.ts';
import { forgetJobName } from './job.ts';

const ns = 'tenants';
const API = 'tidemark.dev/v1alpha1';
type CopyState = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Forgotten';

function backup(
  copies: { primary: CopyState; replica: CopyState },
  metadata: Partial<Backup['metadata']> = {},
): Backup {
  return {
    apiVersion: API,
    kind: 'Backup',
    metadata: { name: 'b-1', namespace: ns, uid: 'uid-b-1', finalizers: [SNAPSHOT_FINALIZER], ...metadata },
    spec: { policy: 'tenants', source: 'documents', type: 'full' },
    status: {
      phase: 'Succeeded',
      completionTime: '2026-11-22T02:03:00Z',
      snapshotId: 'a'.repeat(64),
      repositories: [
        { repository: 'primary', role: 'primary', state: copies.primary, snapshotId: 'a'.repeat(64) },
        { repository: 'replica', role: 'replica', state: copies.replica, snapshotId: 'a'.repeat(64) },
      ],
    },
  };
}

const repo = (name: string) => s3Repository(name, ns);

const policy: BackupPolicy = {
  apiVersion: API,
  kind: 'BackupPolicy',
  metadata: { name: 'tenants', namespace: ns },
  spec: {
    sources: [{ name: 'documents', volume: { claimName: 'documents' } }],
    schedule: { full: { every: '1d' } },
    repository: 'primary',
    replicas: [{ repository: 'replica', region: 'eu' }],
  } as BackupPolicy['spec'],
};

function ended(name: string, outcome: 'Complete' | 'Failed', result: AgentResult): Map<string, JobObserved> {
  const job: k8s.V1Job = {
    metadata: { name, namespace: ns },
    status: { conditions: [{ type: outcome, status: 'True' }] },
  };
  return new Map([[name, { job, result }]]);
}

const observe = (b: Backup, jobs: Map<string, JobObserved> = new Map()): BackupObserved => ({
  backup: b,
  policy,
  repositories: new Map([
    ['primary', repo('primary')],
    ['replica', repo('replica')],
  ]),
  claims: ['documents'],
  jobs,
  settings: { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' },
  now: new Date('2026-11-23T09:00:00Z'),
});

const env = (job: k8s.V1Job | undefined) =>
  Object.fromEntries((job?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
const retired = { annotations: { [RETIRED_ANNOTATION]: 'primary' } };

describe('decideBackup: retention per repository', () => {
  test('a copy retired by its repository is forgotten there by a forget Job', () => {
    const d = decideBackup(observe(backup({ primary: 'Succeeded', replica: 'Succeeded' }, retired)));
    assert.deepEqual(
      d.createJobs.map((j) => j.metadata?.name),
      [forgetJobName(backup({ primary: 'Succeeded', replica: 'Succeeded' }), 'primary')],
    );
    const e = env(d.createJobs[0]);
    assert.equal(e.TIDEMARK_SNAPSHOT, 'a'.repeat(64));
    assert.match(String(e.TIDEMARK_REPO), /^s3:\/\/primary\//);
  });

  test('once the forget Job succeeded the copy is Forgotten, with an Event; the other copy stays', () => {
    const b = backup({ primary: 'Succeeded', replica: 'Succeeded' }, retired);
    const d = decideBackup(observe(b, ended(forgetJobName(b, 'primary'), 'Complete', { ok: true })));
    assert.deepEqual(
      d.status?.repositories?.map((r) => [r.repository, r.state]),
      [
        ['primary', 'Forgotten'],
        ['replica', 'Succeeded'],
      ],
    );
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['SnapshotForgotten'],
    );
    assert.equal(d.createJobs.length, 0);
  });

  test('nothing is forgotten while a replica is still copying from the primary', () => {
    const d = decideBackup(observe(backup({ primary: 'Succeeded', replica: 'Running' }, retired)));
    assert.ok(
      !d.createJobs.some(
        (j) => j.metadata?.name === forgetJobName(backup({ primary: 'Succeeded', replica: 'Running' }), 'primary'),
      ),
    );
  });

  test('retention deleting the Backup forgets only the copies still held, then releases the finalizer', () => {
    const b = backup(
      { primary: 'Forgotten', replica: 'Succeeded' },
      {
        annotations: { ...retired.annotations, [FORGET_ANNOTATION]: FORGET_BY_RETENTION },
        deletionTimestamp: new Date('2026-11-23T08:00:00Z') as unknown as string,
      },
    );
    const first = decideBackup(observe(b));
    assert.deepEqual(
      first.createJobs.map((j) => j.metadata?.name),
      [forgetJobName(b, 'replica')],
    );
    assert.ok(!first.removeFinalizer);
    const done = decideBackup(observe(b, ended(forgetJobName(b, 'replica'), 'Complete', { ok: true })));
    assert.equal(done.removeFinalizer, true);
  });
});

describe('decideBackup: an imported Backup', () => {
  test('before the catalog controller wrote its status it is left alone: no Job, no status, no failure', () => {
    const b = backup({ primary: 'Succeeded', replica: 'Succeeded' }, { annotations: { [IMPORTED_FROM]: 'primary' } });
    delete b.status;
    const d = decideBackup({ ...observe(b), policy: undefined });
    assert.deepEqual(d.createJobs, []);
    assert.equal(d.status, undefined);
    assert.deepEqual(d.events, []);
  });
});
