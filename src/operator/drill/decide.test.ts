import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { type DrillObserved, decideDrills } from './decide.ts';
import { cleanupJobName, DRILL_ANNOTATIONS, DRILL_MODE_LABEL, SCRATCH_LABEL } from './job.ts';

const created = '2026-03-01T00:00:00Z';
const settings = { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' };

function policy(drill: Record<string, unknown> = {}, status: BackupPolicy['status'] = {}): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name: 'tenants', namespace: 'acme', uid: 'policy-uid-1234', creationTimestamp: created },
    spec: {
      sources: [
        { name: 'orders', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['orders'] } },
        { name: 'docs', volume: { claimName: 'docs' } },
      ],
      schedule: { full: { every: '1d' } },
      repository: 'primary',
      objectives: { rto: '1m' },
      verification: {
        restoreDrill: { every: '1h', postgres: { connectionSecret: { name: 'pg-drill' } }, ...drill },
      },
    },
    status,
  } as BackupPolicy;
}

function backup(name: string, completed: string, phase = 'Succeeded'): Backup {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: 'acme', uid: `${name}-uid` },
    spec: { policy: 'tenants', source: 'orders', type: 'full' },
    status: {
      phase,
      completionTime: completed,
      repositories: [{ repository: 'primary', role: 'primary', state: 'Succeeded', snapshotId: `snap-${name}` }],
    },
  } as Backup;
}

const repository = {
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'BackupRepository',
  metadata: { name: 'primary', namespace: 'acme' },
  spec: { provider: 's3', s3: { bucket: 'b' }, encryptionKeySecret: { name: 'k' } },
} as unknown as BackupRepository;

function drillJob(
  name: string,
  options: { scheduled: string; backup?: string; ended?: 'Complete' | 'Failed'; mode?: 'drill' | 'cleanup' },
): k8s.V1Job {
  return {
    metadata: {
      name,
      labels: { [DRILL_MODE_LABEL]: options.mode ?? 'drill' },
      annotations: {
        [DRILL_ANNOTATIONS.source]: 'orders',
        [DRILL_ANNOTATIONS.backup]: options.backup ?? 'b2',
        [DRILL_ANNOTATIONS.scheduled]: options.scheduled,
      },
    },
    status: options.ended
      ? {
          conditions: [{ type: options.ended, status: 'True', lastTransitionTime: new Date('2026-03-01T03:00:30Z') }],
        }
      : {},
  };
}

function observe(overrides: Partial<DrillObserved> = {}): DrillObserved {
  return {
    policy: policy(),
    backups: [backup('b1', '2026-03-01T00:30:00Z'), backup('b2', '2026-03-01T01:30:00Z')],
    repositories: new Map([['primary', repository]]),
    jobs: new Map(),
    claims: [],
    settings,
    now: new Date('2026-03-01T03:00:40Z'),
    random: () => 0,
    ...overrides,
  };
}

const jobs = (...entries: JobObserved[]) => new Map(entries.map((e) => [e.job.metadata?.name ?? '', e]));
const env = (job: k8s.V1Job | undefined, name: string) =>
  job?.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === name)?.value;

describe('decideDrills: when and what', () => {
  it('drills the newest successful Backup of a database source once due, onto the drill server', () => {
    const decision = decideDrills(
      observe({ backups: [...observe().backups, backup('b3', '2026-03-01T02:00:00Z', 'Failed')] }),
    );
    assert.equal(decision.createJobs.length, 1, 'the volume source waits for the size of its scratch PVC');
    const job = decision.createJobs[0];
    assert.equal(env(job, 'TIDEMARK_SNAPSHOT'), 'snap-b2');
    assert.equal(
      env(job, 'TIDEMARK_DRILL_SERVER'),
      'postgresql://$(TIDEMARK_DB_USER)@$(TIDEMARK_DB_HOST):$(TIDEMARK_DB_PORT)/',
    );
    assert.equal(job?.metadata?.labels?.['tidemark.dev/task'], 'drill');
    assert.equal(job?.metadata?.ownerReferences?.[0]?.kind, 'BackupPolicy');
    assert.equal(job?.metadata?.annotations?.[DRILL_ANNOTATIONS.scheduled], '2026-03-01T03:00:00.000Z');
    const secrets = job?.spec?.template.spec?.containers[0]?.env
      ?.map((e) => e.valueFrom?.secretKeyRef?.name)
      .filter(Boolean);
    assert.ok(secrets?.includes('pg-drill'));
    // The source's own server travels as a live source, for the agent to refuse it as drill server.
    assert.ok(secrets?.includes('pg-main'));
  });

  it('waits for the next slot after the last drill, and for a successful Backup', () => {
    const lastDrill = {
      time: '2026-03-01T03:00:20Z',
      backup: 'b2',
      result: 'Succeeded' as const,
      message: 'ok',
      job: 'old',
    };
    const waiting = decideDrills(observe({ policy: policy({}, { sources: [{ name: 'orders', lastDrill }] }) }));
    assert.equal(waiting.createJobs.length, 0);
    assert.equal(waiting.requeueAfterMs, 3600_000 - 40_000);
    assert.equal(decideDrills(observe({ backups: [] })).createJobs.length, 0);
  });

  it('restores a randomly chosen older Backup every olderBackupEvery-th drill', () => {
    const third = policy({ olderBackupEvery: 3 }, { sources: [{ name: 'orders', drills: 2 }] });
    const older = decideDrills(observe({ policy: third, random: () => 0.4 }));
    assert.equal(env(older.createJobs[0], 'TIDEMARK_SNAPSHOT'), 'snap-b1');
    const second = policy({ olderBackupEvery: 3 }, { sources: [{ name: 'orders', drills: 1 }] });
    assert.equal(env(decideDrills(observe({ policy: second })).createJobs[0], 'TIDEMARK_SNAPSHOT'), 'snap-b2');
  });

  it('starts nothing while a drill runs', () => {
    const running = jobs({ job: drillJob('d1', { scheduled: '2026-03-01T02:00:00Z' }) });
    assert.deepEqual(decideDrills(observe({ jobs: running })).createJobs, []);
  });
});

describe('decideDrills: recording a drill that ended', () => {
  const ended = (result: AgentResult<'drill'> | undefined, outcome: 'Complete' | 'Failed' = 'Complete') =>
    jobs({
      job: drillJob('d1', { scheduled: '2026-03-01T03:00:00Z', ended: outcome }),
      ...(result ? { result } : {}),
    });

  it('a verified drill: Succeeded with its RTO against the target, Restorable True, an Event', () => {
    const decision = decideDrills(observe({ jobs: ended({ ok: true, rtoMs: 4200, tablesChecked: 3, cleanup: [] }) }));
    const fields = decision.sources.get('orders');
    assert.equal(fields?.lastDrill?.result, 'Succeeded');
    assert.equal(fields?.lastDrill?.rtoSeconds, 5);
    assert.equal(fields?.lastDrill?.rtoTargetSeconds, 60);
    assert.equal(fields?.lastDrill?.backup, 'b2');
    assert.equal(fields?.lastDrill?.job, 'd1');
    assert.equal(fields?.lastDrillSuccessTime, '2026-03-01T03:00:30.000Z');
    assert.equal(fields?.drills, 1);
    assert.deepEqual(
      decision.restorable.map((r) => [r.backup, r.condition.status, r.condition.reason]),
      [['b2', 'True', 'DrillSucceeded']],
    );
    // The condition's lastTransitionTime moves only when its status does: the message dates the drill.
    assert.match(decision.restorable[0]?.condition.message ?? '', /^drill ended 2026-03-01T03:00:30.000Z: restored b2/);
    assert.deepEqual(
      decision.events.map((e) => e.reason),
      ['DrillSucceeded'],
    );
    assert.deepEqual(decision.createJobs, [], 'no cleanup after a drill that reported');
  });

  it('a drill over the RTO target still proves the backup restorable, and warns', () => {
    const decision = decideDrills(observe({ jobs: ended({ ok: true, rtoMs: 61_000, tablesChecked: 1, cleanup: [] }) }));
    assert.match(decision.sources.get('orders')?.lastDrill?.message ?? '', /over the 60s RTO target/);
    assert.deepEqual(decision.events.map((e) => e.reason).sort(), ['DrillSlowerThanRTO', 'DrillSucceeded']);
  });

  it('a drill that found the backup damaged: Failed, Restorable False, the last success kept', () => {
    const before = policy(
      {},
      { sources: [{ name: 'orders', lastDrillSuccessTime: '2026-02-28T00:00:00Z', drills: 4 }] },
    );
    const decision = decideDrills(
      observe({
        policy: before,
        jobs: ended(
          {
            ok: false,
            error: { code: 'Corrupt', message: 'pack 3fa2 is damaged' },
          },
          'Failed',
        ),
      }),
    );
    const fields = decision.sources.get('orders');
    assert.equal(fields?.lastDrill?.result, 'Failed');
    assert.match(fields?.lastDrill?.message ?? '', /pack 3fa2 is damaged \(Corrupt\)/);
    assert.equal(fields?.lastDrillSuccessTime, '2026-02-28T00:00:00Z');
    assert.equal(fields?.drills, 5);
    assert.deepEqual(
      decision.restorable.map((r) => [r.condition.status, r.condition.reason]),
      [['False', 'DrillFailed']],
    );
    assert.equal(decision.events[0]?.type, 'Warning');
  });

  it('a drill that could not reach its server failed, but says nothing about the Backup; a cleanup follows', () => {
    const decision = decideDrills(
      observe({
        jobs: ended(
          {
            ok: false,
            error: { code: 'SourceUnavailable', message: 'no route' },
          },
          'Failed',
        ),
      }),
    );
    assert.equal(decision.sources.get('orders')?.lastDrill?.result, 'Failed');
    assert.deepEqual(decision.restorable, []);
    assert.deepEqual(
      decision.createJobs.map((j) => j.metadata?.name),
      [cleanupJobName('d1')],
    );
  });

  it('a drill killed before it reported: Failed, and a cleanup Job on its drill server, once', () => {
    // The kubelet's fallback: the tail of the agent's JSON log instead of a result.
    const killed = ended(
      { ok: false, error: { code: 'Internal', message: '{"level":30,"event":"progress"}\n{"level":30' } },
      'Failed',
    );
    const decision = decideDrills(observe({ jobs: killed }));
    assert.match(decision.sources.get('orders')?.lastDrill?.message ?? '', /ended without reporting/);
    assert.deepEqual(decision.restorable, []);
    const cleanup = decision.createJobs.find((j) => j.metadata?.name === cleanupJobName('d1'));
    assert.ok(cleanup);
    assert.equal(env(cleanup, 'TIDEMARK_DRILL_CLEANUP'), 'true');
    assert.equal(env(cleanup, 'TIDEMARK_SNAPSHOT'), undefined);
    assert.equal(cleanup?.metadata?.labels?.[DRILL_MODE_LABEL], 'cleanup');

    const recorded = policy(
      {},
      { sources: [{ name: 'orders', lastDrill: decision.sources.get('orders')?.lastDrill }] },
    );
    const withCleanup = new Map(killed);
    withCleanup.set(cleanupJobName('d1'), {
      job: drillJob(cleanupJobName('d1'), { scheduled: '', mode: 'cleanup' }),
    });
    const again = decideDrills(observe({ policy: recorded, jobs: withCleanup, now: new Date('2026-03-01T03:00:50Z') }));
    assert.equal(again.sources.size, 0, 'recorded once');
    assert.ok(!again.createJobs.some((j) => j.metadata?.labels?.[DRILL_MODE_LABEL] === 'cleanup'), 'cleaned up once');
  });

  it('keeps only the newest drill Job (and its cleanup); older ended ones are deleted', () => {
    const decision = decideDrills(
      observe({
        jobs: jobs(
          { job: drillJob('d0', { scheduled: '2026-03-01T02:00:00Z', ended: 'Complete' }) },
          { job: drillJob('d1', { scheduled: '2026-03-01T03:00:00Z' }) },
        ),
      }),
    );
    assert.deepEqual(decision.deleteJobs, ['d0']);
  });

  it('does nothing for a policy without restore drills', () => {
    const plain = policy();
    delete plain.spec.verification;
    assert.deepEqual(decideDrills(observe({ policy: plain })).createJobs, []);
  });
});

describe('decideDrills: volume sources', () => {
  const docsBackup = (name: string, completed: string) => {
    const b = backup(name, completed);
    b.spec.source = 'docs';
    return b;
  };
  const sourceClaim = { metadata: { name: 'docs' }, spec: { resources: { requests: { storage: '5Gi' } } } };
  const volumeObserved = (overrides: Partial<DrillObserved> = {}) =>
    observe({
      backups: [docsBackup('v1', '2026-03-01T01:30:00Z')],
      claims: [sourceClaim],
      ...overrides,
    });
  const scratch = (name: string) => ({ metadata: { name, labels: { [SCRATCH_LABEL]: 'tenants' } } });

  it('creates a scratch PVC sized as the source, before the Job that mounts only it, read-write', () => {
    const decision = decideDrills(volumeObserved());
    assert.equal(decision.createJobs.length, 1);
    const job = decision.createJobs[0];
    const claim = decision.createClaims[0];
    assert.equal(claim?.metadata?.name, job?.metadata?.name, 'named as its Job');
    assert.equal(claim?.spec?.resources?.requests?.storage, '5Gi');
    assert.equal(claim?.spec?.storageClassName, undefined, 'the cluster default');
    assert.equal(claim?.metadata?.labels?.[SCRATCH_LABEL], 'tenants');
    assert.equal(claim?.metadata?.ownerReferences?.[0]?.kind, 'BackupPolicy');
    const pod = job?.spec?.template.spec;
    const claims = pod?.volumes?.filter((v) => v.persistentVolumeClaim).map((v) => v.persistentVolumeClaim);
    assert.deepEqual(claims, [{ claimName: claim?.metadata?.name }], 'the scratch PVC only, never the source');
    assert.equal(env(job, 'TIDEMARK_DRILL_SERVER'), 'file:///scratch');
    assert.equal(env(job, 'TIDEMARK_SNAPSHOT'), 'snap-v1');
    assert.deepEqual(decision.deleteClaims, []);
  });

  it('takes size and StorageClass from verification.restoreDrill.volume; without a size and no source PVC, says so', () => {
    const sized = decideDrills(
      volumeObserved({ policy: policy({ volume: { size: '2Gi', storageClassName: 'fast' } }), claims: [] }),
    );
    assert.equal(sized.createClaims[0]?.spec?.resources?.requests?.storage, '2Gi');
    assert.equal(sized.createClaims[0]?.spec?.storageClassName, 'fast');
    const unsized = decideDrills(volumeObserved({ claims: [] }));
    assert.deepEqual(unsized.createJobs, []);
    assert.deepEqual(unsized.createClaims, []);
    assert.match(unsized.events[0]?.message ?? '', /set verification.restoreDrill.volume.size/);
  });

  it('keeps the scratch PVC while its drill runs, deletes it once the Job ended or is gone, without a cleanup Job', () => {
    const name = decideDrills(volumeObserved()).createJobs[0]?.metadata?.name ?? '';
    const job = (ended?: 'Complete' | 'Failed') => {
      const j = drillJob(name, { scheduled: '2026-03-01T03:00:00Z', backup: 'v1', ...(ended ? { ended } : {}) });
      if (j.metadata?.annotations) j.metadata.annotations[DRILL_ANNOTATIONS.source] = 'docs';
      return j;
    };
    const claims = [
      sourceClaim,
      scratch(name),
      { metadata: { name: 'other', labels: { [SCRATCH_LABEL]: 'another' } } },
    ];
    const running = decideDrills(volumeObserved({ claims, jobs: jobs({ job: job() }) }));
    assert.deepEqual(running.deleteClaims, []);
    assert.deepEqual(running.deleteJobs, []);
    const failed = decideDrills(
      volumeObserved({
        claims,
        jobs: jobs({ job: job('Failed'), result: { ok: false, error: { code: 'Corrupt', message: 'pack damaged' } } }),
      }),
    );
    assert.deepEqual(failed.deleteClaims, [name], 'whatever the outcome');
    assert.deepEqual(failed.deleteJobs, [name], 'its pod would hold the scratch PVC');
    assert.match(
      failed.sources.get('docs')?.lastDrill?.message ?? '',
      /pack damaged \(Corrupt\); its scratch PVC is deleted/,
    );
    assert.deepEqual(failed.createJobs, [], 'a volume drill leaves nothing a cleanup Job could drop');
    assert.deepEqual(
      failed.restorable.map((r) => r.condition.status),
      ['False'],
    );
    const lastDrill = {
      time: '2026-03-01T03:00:05Z',
      backup: 'v1',
      result: 'Failed' as const,
      message: 'x',
      job: name,
    };
    const recorded = policy({}, { sources: [{ name: 'docs', lastDrill }] });
    const gone = decideDrills(volumeObserved({ policy: recorded, claims, now: new Date('2026-03-01T03:00:10Z') }));
    assert.ok(gone.deleteClaims.includes(name), 'its Job was deleted (a killed drill)');
    assert.ok(!gone.deleteClaims.includes('other'), "another policy's scratch PVC is not this one's");
  });

  it('reports a verified volume drill by its files', () => {
    const decision = decideDrills(
      volumeObserved({
        jobs: jobs({
          job: drillJob('d1', { scheduled: '2026-03-01T03:00:00Z', backup: 'v1', ended: 'Complete' }),
          result: { ok: true, rtoMs: 1200, tablesChecked: 0, filesChecked: 7, bytesChecked: 900, cleanup: [] },
        }),
      }),
    );
    assert.match(
      decision.sources.get('orders')?.lastDrill?.message ?? '',
      /restored v1 into a scratch PVC and found its 7 files \(900 bytes\)/,
    );
  });
});
