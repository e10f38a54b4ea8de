// The Backup controller's decision for retention per repository and deletion, without a cluster.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { Backup, BackupPolicy } from '../../api/kinds.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { s3Repository } from '../testing/objects.ts';
import {
  type BackupObserved,
  changesNothing,
  decideBackup,
  IMPORTED_FROM,
  RETIRED_ANNOTATION,
  replicaRetryDelayMs,
  SNAPSHOT_FINALIZER,
} from './decide.ts';
import { FORGET_ANNOTATION, FORGET_BY_RETENTION } from './deletion.ts';
import { forgetJobName, replicaJobName } from './job.ts';

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

const pending = (metadata: Partial<Backup['metadata']> = {}): Backup => ({
  apiVersion: API,
  kind: 'Backup',
  metadata: { name: 'b-2', namespace: ns, uid: '0f3a9c1b-aaaa-bbbb-cccc-000000000001', ...metadata },
  spec: { policy: 'tenants', source: 'documents', type: 'full' },
});

describe('decideBackup: only Jobs of this Backup object count', () => {
  test('the Job name is unique per Backup instance: a re-created Backup of the same name gets a new Job', () => {
    const first = decideBackup(observe(pending()));
    const again = decideBackup(observe(pending({ uid: '7d00e2aa-aaaa-bbbb-cccc-000000000002' })));
    const [a, b] = [first.createJobs[0]?.metadata?.name, again.createJobs[0]?.metadata?.name];
    assert.ok(a && b && a !== b, `${a} vs ${b}`);
    assert.equal(first.status?.jobName, a);
    assert.equal(first.createJobs[0]?.metadata?.annotations?.['tidemark.dev/owner-uid'], pending().metadata.uid);
  });

  test('a Job created for the object before the upgrade (recorded in status.jobName) is still followed', () => {
    const b = pending();
    b.status = { phase: 'Running', jobName: 'b-2', startTime: '2026-11-23T08:59:00Z' };
    const d = decideBackup(observe(b, ended('b-2', 'Complete', { ok: true, snapshotId: 'c'.repeat(64) })));
    assert.equal(d.status?.phase, 'Succeeded');
    assert.equal(d.status?.snapshotId, 'c'.repeat(64));
  });
});

describe('decideBackup: what it waits for, and refusals', () => {
  test('applied before its policy, it waits Pending with reason PolicyNotFound and creates nothing', () => {
    const d = decideBackup({ ...observe(pending()), policy: undefined } as BackupObserved);
    assert.equal(d.status?.phase, 'Pending');
    const condition = d.status?.conditions?.find((c) => c.type === 'Succeeded');
    assert.equal(condition?.reason, 'PolicyNotFound');
    assert.match(condition?.message ?? '', /BackupPolicy tenants/);
    assert.equal(d.createJobs.length, 0);
  });

  test('a source not (yet) in the policy, or a missing repository, is waited for too', () => {
    const other = decideBackup(observe({ ...pending(), spec: { ...pending().spec, source: 'orders' } }));
    assert.equal(other.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'SourceNotFound');
    assert.equal(other.status?.phase, 'Pending');
    const noRepository = decideBackup({ ...observe(pending()), repositories: new Map() });
    assert.equal(noRepository.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'RepositoryNotFound');
  });

  test('a backup Job the API server refused fails the Backup at once with its message', () => {
    const b = pending();
    const name = decideBackup(observe(b)).status?.jobName ?? '';
    const d = decideBackup({
      ...observe(b),
      rejected: new Map([[name, 'the API server refused the Job (403): exceeded quota']]),
    });
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(d.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'JobRejected');
    assert.match(d.status?.error ?? '', /exceeded quota/);
    assert.equal(d.createJobs.length, 0);
  });

  test('a Job whose pod cannot start fails the Backup with PodCannotStart and the kubelet message', () => {
    const b = pending();
    b.status = { phase: 'Running', jobName: 'b-2-0f3a9c1b', startTime: '2026-11-23T08:59:00Z' };
    const jobs = ended('b-2-0f3a9c1b', 'Failed', {
      ok: false,
      error: { code: 'PodCannotStart', message: 'CreateContainerConfigError: key "password" of secret "pg" not found' },
    });
    for (const j of jobs.values()) j.cannotStart = true;
    const d = decideBackup(observe(b, jobs));
    assert.equal(d.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'PodCannotStart');
    assert.match(d.status?.error ?? '', /key "password" of secret "pg"/);
  });
});

describe('decideBackup: replica copies are retried with back-off', () => {
  const copying = (
    state: Partial<NonNullable<NonNullable<Backup['status']>['repositories']>[number]>,
    metadata = {},
  ) => {
    const b = backup({ primary: 'Succeeded', replica: 'Running' }, metadata);
    const replica = b.status?.repositories?.[1];
    if (replica) Object.assign(replica, state);
    return b;
  };

  test('back-off doubles from 30 s to at most 10 minutes', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map(replicaRetryDelayMs),
      [30, 60, 120, 240, 480, 600, 600].map((s) => s * 1000),
    );
  });

  test('a failed copy records the attempt and the next retry time, with a Warning naming the attempt', () => {
    const b = copying({ attempts: 1 });
    const d = decideBackup(
      observe(
        b,
        ended(replicaJobName(b, 'replica'), 'Failed', {
          ok: false,
          error: { code: 'Transient', message: 'replica unreachable' },
        }),
      ),
    );
    const replica = d.status?.repositories?.[1];
    assert.equal(replica?.state, 'Failed');
    assert.equal(replica?.attempts, 1);
    assert.equal(replica?.nextRetryTime, '2026-11-23T09:00:30.000Z');
    assert.equal(replica?.failureTime, '2026-11-23T09:00:00.000Z', 'the policy keeps the failure by this time');
    assert.match(
      d.events.find((e) => e.reason === 'ReplicationFailed')?.message ?? '',
      /attempt 1.*replica unreachable/,
    );
    assert.ok((d.requeueAfterMs ?? Infinity) <= 30_005);
  });

  test('before the retry time nothing is created; after it, a new Job for the next attempt', () => {
    const waiting = copying({ state: 'Failed', attempts: 1, nextRetryTime: '2026-11-23T09:00:30Z' });
    assert.equal(decideBackup(observe(waiting)).createJobs.length, 0);
    const due = decideBackup({ ...observe(waiting), now: new Date('2026-11-23T09:00:31Z') });
    assert.deepEqual(
      due.createJobs.map((j) => j.metadata?.name),
      [replicaJobName(waiting, 'replica', 2)],
    );
    assert.notEqual(replicaJobName(waiting, 'replica', 2), replicaJobName(waiting, 'replica'));
    assert.equal(due.status?.repositories?.[1]?.state, 'Running');
    assert.equal(due.status?.repositories?.[1]?.attempts, 2);
    assert.equal(due.status?.repositories?.[1]?.nextRetryTime, undefined);
  });

  test('the retry that succeeds makes the copy Succeeded', () => {
    const b = copying({ attempts: 2, jobName: 'x' });
    const d = decideBackup(observe(b, ended(replicaJobName(b, 'replica', 2), 'Complete', { ok: true })));
    assert.equal(d.status?.repositories?.[1]?.state, 'Succeeded');
  });

  test('a copy retention retired (from the replica or the primary) is not retried', () => {
    const b = copying(
      { state: 'Failed', attempts: 3, nextRetryTime: '2026-11-23T08:00:00Z' },
      { annotations: { [RETIRED_ANNOTATION]: 'replica' } },
    );
    const d = decideBackup(observe(b));
    assert.ok(!d.createJobs.some((j) => j.metadata?.labels?.['tidemark.dev/task'] === 'replicate'));
    assert.equal(d.status?.repositories?.[1]?.nextRetryTime, undefined);
  });
});

describe('agent Jobs', () => {
  test('every agent Job has a deadline by default, and long names make valid label values', () => {
    const longPolicy = { ...policy, metadata: { ...policy.metadata, name: `${'p'.repeat(120)}.team` } };
    const b = pending({ name: `${'p'.repeat(120)}.team-documents-full-20261123t0900z` });
    b.spec.policy = longPolicy.metadata.name;
    const d = decideBackup({ ...observe(b), policy: longPolicy });
    const job = d.createJobs[0];
    assert.equal(job?.spec?.activeDeadlineSeconds, 6 * 3600);
    for (const value of Object.values(job?.metadata?.labels ?? {})) assert.ok(value.length <= 63, value);
    assert.ok((job?.metadata?.name ?? '').length <= 63);
  });

  test('a backup Job mounts no ServiceAccount token: the agent calls no Kubernetes API', () => {
    const job = decideBackup(observe(pending())).createJobs[0];
    assert.equal(job?.spec?.template.spec?.automountServiceAccountToken, false);
  });
});

describe('changesNothing: when a decision from the cache needs no fresh read', () => {
  test('a finished, replicated Backup: nothing to do, decided from the cache alone', () => {
    const b = backup({ primary: 'Succeeded', replica: 'Succeeded' });
    assert.equal(changesNothing(decideBackup(observe(b)), b), true);
  });

  test('a run whose Job ended: its outcome is decided again from a fresh read (a stale cache must not record it twice)', () => {
    const b = pending();
    b.status = { phase: 'Running', jobName: 'b-2-job' };
    const d = decideBackup(observe(b, ended('b-2-job', 'Failed', {} as AgentResult)));
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(changesNothing(d, b), false);
  });

  test('a Backup still to start (a Job to create), or missing its replica copy, acts', () => {
    const fresh = pending();
    assert.equal(changesNothing(decideBackup(observe(fresh)), fresh), false);
    const b = backup({ primary: 'Succeeded', replica: 'Pending' });
    assert.equal(changesNothing(decideBackup(observe(b)), b), false);
  });
});
