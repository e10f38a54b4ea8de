// What deleting a Backup does to its snapshot, without a cluster: plain deletion keeps it, retention
// or the forget annotation removes it, the immutability period and a terminating namespace keep it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { Backup, BackupRepository } from '../../api/kinds.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { s3Repository } from '../testing/objects.ts';
import { type BackupObserved, decideBackup, SNAPSHOT_FINALIZER } from './decide.ts';
import { FORGET_ANNOTATION, forgetRequest, markForgetByRetention } from './deletion.ts';
import { forgetJobName } from './job.ts';

const ns = 'tenants';
const snapshot = 'a'.repeat(64);
const now = new Date('2026-11-23T09:00:00Z');

function deleted(annotations: Record<string, string> = {}, completionTime = '2026-11-22T02:03:00Z'): Backup {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: {
      name: 'b-1',
      namespace: ns,
      uid: 'uid-b-1',
      finalizers: [SNAPSHOT_FINALIZER],
      annotations,
      deletionTimestamp: now as unknown as string,
    },
    spec: { policy: 'tenants', source: 'documents', type: 'full' },
    status: {
      phase: 'Succeeded',
      completionTime,
      snapshotId: snapshot,
      repositories: [
        { repository: 'primary', role: 'primary', state: 'Succeeded', snapshotId: snapshot, completionTime },
        { repository: 'replica', role: 'replica', state: 'Succeeded', snapshotId: snapshot, completionTime },
      ],
    },
  };
}

function locked(name: string, period: string): BackupRepository {
  const r = s3Repository(name, ns);
  r.spec.immutability = { period };
  return r;
}

const observe = (
  backup: Backup,
  options: { repositories?: BackupRepository[]; jobs?: Map<string, JobObserved>; namespaceTerminating?: boolean } = {},
): BackupObserved => ({
  backup,
  repositories: new Map(
    (options.repositories ?? [s3Repository('primary', ns), s3Repository('replica', ns)]).map((r) => [
      r.metadata.name ?? '',
      r,
    ]),
  ),
  claims: [],
  jobs: options.jobs ?? new Map(),
  settings: { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' },
  now,
  ...(options.namespaceTerminating ? { namespaceTerminating: true } : {}),
});

const complete = (name: string): [string, JobObserved] => [
  name,
  {
    job: { metadata: { name }, status: { conditions: [{ type: 'Complete', status: 'True' }] } } as k8s.V1Job,
    result: { ok: true },
  },
];

describe('decideDeletion', () => {
  test('plain deletion keeps the snapshot everywhere, releases the finalizer and says how to remove it', () => {
    const d = decideBackup(observe(deleted()));
    assert.equal(d.createJobs.length, 0);
    assert.equal(d.removeFinalizer, true);
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [['Normal', 'SnapshotKept']],
    );
    assert.match(d.events[0]?.message ?? '', /Backup b-1 deleted; snapshot aaaaaaaaaaaa kept in primary .*replica/);
    assert.match(d.events[0]?.message ?? '', /annotate tidemark\.dev\/forget=true before deleting/);
  });

  test('an unknown annotation value is plain deletion', () => {
    assert.equal(forgetRequest(deleted({ [FORGET_ANNOTATION]: 'yes please' })), undefined);
    assert.equal(decideBackup(observe(deleted({ [FORGET_ANNOTATION]: 'yes' }))).createJobs.length, 0);
  });

  for (const value of ['true', 'retention'])
    test(`${FORGET_ANNOTATION}=${value} forgets in every repository, then releases the finalizer`, () => {
      const b = deleted({ [FORGET_ANNOTATION]: value });
      const first = decideBackup(observe(b));
      assert.deepEqual(
        first.createJobs.map((j) => j.metadata?.name),
        [forgetJobName(b, 'primary'), forgetJobName(b, 'replica')],
      );
      assert.ok(!first.removeFinalizer);
      const jobs = new Map([complete(forgetJobName(b, 'primary')), complete(forgetJobName(b, 'replica'))]);
      const done = decideBackup(observe(b, { jobs }));
      assert.equal(done.removeFinalizer, true);
      assert.deepEqual(done.events, []);
    });

  test('inside a repository immutability period nothing is forgotten there, whatever the annotation says', () => {
    const b = deleted({ [FORGET_ANNOTATION]: 'true' }, '2026-11-23T08:30:00Z');
    const d = decideBackup(observe(b, { repositories: [locked('primary', '1h'), s3Repository('replica', ns)] }));
    assert.deepEqual(
      d.createJobs.map((j) => j.metadata?.name),
      [forgetJobName(b, 'replica')],
    );
    const jobs = new Map([complete(forgetJobName(b, 'replica'))]);
    const done = decideBackup(
      observe(b, { repositories: [locked('primary', '1h'), s3Repository('replica', ns)], jobs }),
    );
    assert.equal(done.removeFinalizer, true);
    assert.match(
      done.events.find((e) => e.reason === 'SnapshotKept')?.message ?? '',
      /kept in primary \(kept: immutable until 2026-11-23T09:30:00\.000Z \(immutability\.period 1h\)\)/,
    );
  });

  test('after the period the annotated snapshot is forgotten', () => {
    const b = deleted({ [FORGET_ANNOTATION]: 'true' }, '2026-11-23T07:59:00Z');
    const d = decideBackup(observe(b, { repositories: [locked('primary', '1h'), locked('replica', '1h')] }));
    assert.equal(d.createJobs.length, 2);
  });

  test('a forget Job carries the immutability period so the agent refuses too', () => {
    const b = deleted({ [FORGET_ANNOTATION]: 'true' }, '2026-11-20T00:00:00Z');
    const d = decideBackup(observe(b, { repositories: [locked('primary', '2d'), s3Repository('replica', ns)] }));
    const env = d.createJobs[0]?.spec?.template.spec?.containers[0]?.env ?? [];
    assert.equal(env.find((e) => e.name === 'TIDEMARK_REPO_IMMUTABILITY')?.value, '2d');
  });

  test('in a namespace being deleted the finalizer goes at once and the snapshot is kept', () => {
    const d = decideBackup(observe(deleted({ [FORGET_ANNOTATION]: 'true' }), { namespaceTerminating: true }));
    assert.equal(d.createJobs.length, 0);
    assert.equal(d.removeFinalizer, true);
    assert.match(d.events[0]?.message ?? '', /namespace is being deleted/);
  });

  test('a repository that no longer exists keeps its copy; the finalizer is not held for it', () => {
    const b = deleted({ [FORGET_ANNOTATION]: 'true' });
    const d = decideBackup(observe(b, { repositories: [s3Repository('primary', ns)] }));
    assert.deepEqual(
      d.createJobs.map((j) => j.metadata?.name),
      [forgetJobName(b, 'primary')],
    );
  });

  test('retention marks a Backup before deleting it, keeping its other annotations', () => {
    assert.deepEqual(markForgetByRetention({ name: 'b', annotations: { a: '1' } }), {
      name: 'b',
      annotations: { a: '1', [FORGET_ANNOTATION]: 'retention' },
    });
  });
});
