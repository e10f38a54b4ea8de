// The BackupExport decision (issue 13, R-EXPORT): pure, with a fixed clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { ExportResult } from '../../agent/tasks/export.ts';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { Backup, BackupExport, BackupPolicy } from '../../api/kinds.ts';
import { s3Repository } from '../testing/objects.ts';
import { decideExport, EXPORT_FINALIZER, type ExportObserved } from './decide.ts';
import { exportJobName } from './job.ts';

const ns = 'tenants';
const NOW = new Date('2026-03-02T10:00:00Z');
const API = 'tidemark.dev/v1alpha1';
const settings = { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' };

const backup = (phase: 'Succeeded' | 'Failed' | 'Running' = 'Succeeded'): Backup => ({
  apiVersion: API,
  kind: 'Backup',
  metadata: { name: 'b1', namespace: ns, uid: 'uid-b1' },
  spec: { policy: 'p', source: 'db', type: 'full' },
  status: {
    phase,
    snapshotId: 'a'.repeat(64),
    repositories: [{ repository: 'primary', role: 'primary', state: 'Succeeded' }],
  },
});

const policy: BackupPolicy = {
  apiVersion: API,
  kind: 'BackupPolicy',
  metadata: { name: 'p', namespace: ns },
  spec: {
    sources: [{ name: 'db', postgres: { connectionSecret: { name: 'pg' } } }],
    schedule: { full: { every: '1h' } },
    repository: 'primary',
  },
} as BackupPolicy;

function exportObject(status?: BackupExport['status'], extra: Partial<BackupExport['metadata']> = {}): BackupExport {
  return {
    apiVersion: API,
    kind: 'BackupExport',
    metadata: { name: 'e1', namespace: ns, uid: 'uid-e1', finalizers: [EXPORT_FINALIZER], ...extra },
    spec: { backup: 'b1', expiresAfter: '1h' },
    ...(status ? { status } : {}),
  };
}

function observed(exp: BackupExport, overrides: Partial<ExportObserved> = {}): ExportObserved {
  return {
    exp,
    backup: backup(),
    policy,
    repositories: new Map([['primary', s3Repository('primary', ns)]]),
    jobs: new Map(),
    settings,
    now: NOW,
    ...overrides,
  };
}

const ended = (name: string, result: AgentResult<'export'>, type: 'Complete' | 'Failed' = 'Complete') => ({
  job: {
    metadata: { name },
    status: { conditions: [{ type, status: 'True' }] },
  } as k8s.V1Job,
  result,
});

const envOf = (job: k8s.V1Job | undefined) =>
  Object.fromEntries(
    (job?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? 'secretKeyRef']),
  );

describe('decideExport', () => {
  test('a new export gets its finalizer first', () => {
    assert.equal(decideExport(observed(exportObject(undefined, { finalizers: [] }))).finalizer, 'add');
  });

  test('starts the export Job of a succeeded Backup: snapshot, kind, key, expiry, Secret and owner, a token, no retries', () => {
    const decision = decideExport(observed(exportObject()));
    assert.equal(decision.status?.phase, 'Running');
    assert.equal(decision.status?.objectKey, 'exports/tenants/e1-uid-e1.zip');
    assert.equal(decision.status?.repository, 'primary');
    const [job] = decision.createJobs;
    const env = envOf(job);
    assert.equal(env.TIDEMARK_EXPORT_ACTION, 'write');
    assert.equal(env.TIDEMARK_SNAPSHOT, 'a'.repeat(64));
    assert.equal(env.TIDEMARK_EXPORT_KIND, 'database');
    assert.equal(env.TIDEMARK_EXPORT_KEY, 'exports/tenants/e1-uid-e1.zip');
    assert.equal(env.TIDEMARK_EXPORT_EXPIRES_AFTER, '1h');
    assert.equal(env.TIDEMARK_EXPORT_SECRET, 'e1-export-link');
    assert.equal(JSON.parse(env.TIDEMARK_EXPORT_OWNER ?? '').uid, 'uid-e1');
    assert.equal(job?.spec?.backoffLimit, 0);
    assert.equal(job?.spec?.template.spec?.automountServiceAccountToken, true);
    assert.deepEqual(
      decision.events.map((e) => e.reason),
      ['ExportStarted'],
    );
  });

  test('waits for a Backup that is missing or running; fails for a failed one and for S3 links past 7 days', () => {
    assert.equal(decideExport(observed(exportObject(), { backup: undefined })).status?.phase, 'Pending');
    assert.equal(decideExport(observed(exportObject(), { backup: backup('Running') })).status?.phase, 'Pending');
    const failed = decideExport(observed(exportObject(), { backup: backup('Failed') }));
    assert.equal(failed.status?.phase, 'Failed');
    assert.equal(failed.finalizer, 'remove');
    const long = exportObject();
    long.spec.expiresAfter = '8d';
    assert.match(decideExport(observed(long)).status?.error ?? '', /at most 7d/);
  });

  test('Ready from the agent result, without the link; then requeued at the expiry', () => {
    const running = exportObject({
      phase: 'Running',
      jobName: 'job-1',
      objectKey: 'exports/tenants/e1-uid-e1.zip',
      repository: 'primary',
    });
    const result: AgentResult<'export'> = {
      ok: true,
      objects: [{ name: 'shop/public.t', records: 3 }],
      export: {
        key: 'exports/tenants/e1-uid-e1.zip',
        location: 's3://b/tenants/exports/tenants/e1-uid-e1.zip',
        sizeBytes: 2048,
        expiryTime: '2026-03-02T11:00:00.000Z',
        linked: true,
      },
    };
    const decision = decideExport(observed(running, { jobs: new Map([['job-1', ended('job-1', result)]]) }));
    assert.equal(decision.status?.phase, 'Ready');
    assert.equal(decision.status?.secretName, 'e1-export-link');
    assert.equal(decision.status?.size, '2.0 KiB');
    assert.equal(decision.requeueAfterMs, 3600_000);
    assert.deepEqual(
      decision.events.map((e) => e.reason),
      ['ExportReady'],
    );
    const unlinked = decideExport(
      observed(running, {
        jobs: new Map([
          [
            'job-1',
            ended('job-1', {
              ...result,
              export: { ...(result.export as NonNullable<ExportResult['export']>), linked: false },
            }),
          ],
        ]),
      }),
    );
    assert.equal(unlinked.status?.secretName, undefined);
    assert.match(unlinked.events[0]?.message ?? '', /no link for a filesystem repository/);
  });

  test('expired: a delete Job, then Expired; deleted: a delete Job, then the finalizer goes', () => {
    const ready = exportObject({
      phase: 'Ready',
      objectKey: 'exports/tenants/e1-uid-e1.zip',
      repository: 'primary',
      expiryTime: '2026-03-02T09:59:00Z',
    });
    const deleting = decideExport(observed(ready));
    const [job] = deleting.createJobs;
    assert.equal(envOf(job).TIDEMARK_EXPORT_ACTION, 'delete');
    assert.equal(job?.metadata?.ownerReferences, undefined, 'outlives the export');
    const name = exportJobName(ready, 'delete');
    const done = decideExport(observed(ready, { jobs: new Map([[name, ended(name, { ok: true })]]) }));
    assert.equal(done.status?.phase, 'Expired');
    assert.equal(done.finalizer, 'remove');

    const gone = { ...ready, metadata: { ...ready.metadata, deletionTimestamp: NOW.toISOString() } };
    assert.equal(decideExport(observed(gone)).createJobs.length, 1);
    assert.equal(
      decideExport(observed(gone, { jobs: new Map([[name, ended(name, { ok: true })]]) })).finalizer,
      'remove',
    );
    const never = exportObject(undefined, { deletionTimestamp: NOW.toISOString() });
    assert.equal(decideExport(observed(never)).finalizer, 'remove', 'nothing written, nothing to delete');
  });
});
