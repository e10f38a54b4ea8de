// The metrics computed from API objects, without a cluster: what a scrape reports, and that it says
// what the BackupPolicy status says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Backup, BackupPolicy, RestoreRequest } from '../api/kinds.ts';
import { decidePolicy } from '../operator/backuppolicy/decide.ts';
import { BackupsByPolicy } from '../operator/runtime/by-policy.ts';
import { s3Repository } from '../operator/testing/objects.ts';
import type { HistogramCounts, Labels } from './histogram.ts';
import { type ObservedObjects, objectSamples, type Sample, SamplesMemo } from './samples.ts';

const NOW = new Date('2026-11-10T12:00:00Z');
const CREATED = '2026-11-01T00:00:00Z';
const seconds = (iso: string) => Date.parse(iso) / 1000;

function policy(spec: Partial<BackupPolicy['spec']> = {}, name = 'tenants'): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name, namespace: 'acme', generation: 1, creationTimestamp: CREATED },
    spec: {
      sources: [
        { name: 'db', postgres: { connectionSecret: { name: 'pg' }, allDatabases: true } },
        { name: 'documents', volume: { selector: { matchLabels: { app: 'docs' } } } },
      ],
      schedule: { full: { cron: '0 2 * * *' } },
      repository: 'primary',
      objectives: { rpo: '26h' },
      ...spec,
    },
  } as BackupPolicy;
}

interface BackupOptions {
  source?: string;
  type?: 'full' | 'incremental';
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  reason?: string;
  started?: string;
  completed?: string;
  bytes?: number;
  deleting?: boolean;
  copies?: { repository: string; state: string; completionTime?: string }[];
}

function backup(name: string, o: BackupOptions = {}): Backup {
  const phase = o.phase ?? 'Succeeded';
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: {
      name,
      namespace: 'acme',
      creationTimestamp: o.started ?? '2026-11-09T02:00:00Z',
      ...(o.deleting ? { deletionTimestamp: '2026-11-10T11:00:00Z' } : {}),
    },
    spec: { policy: 'tenants', source: o.source ?? 'db', type: o.type ?? 'full' },
    status: {
      phase,
      startTime: o.started ?? '2026-11-09T02:00:00Z',
      ...(o.completed ? { completionTime: o.completed } : {}),
      ...(o.bytes !== undefined ? { logicalBytes: o.bytes } : {}),
      ...(o.copies ? { repositories: o.copies } : {}),
      conditions: [
        {
          type: 'Succeeded',
          status: phase === 'Succeeded' ? 'True' : phase === 'Failed' ? 'False' : 'Unknown',
          reason: o.reason ?? (phase === 'Succeeded' ? 'Completed' : phase === 'Failed' ? 'JobFailed' : 'JobRunning'),
          message: '',
          lastTransitionTime: o.completed ?? NOW.toISOString(),
        },
      ],
    },
  } as Backup;
}

function restore(
  name: string,
  o: { phase: 'Succeeded' | 'Failed' | 'Running'; reason?: string; backupName?: string; policy?: string },
  times: { started?: string; completed?: string; rto?: number } = {},
): RestoreRequest {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'RestoreRequest',
    metadata: { name, namespace: 'acme' },
    spec: {
      from: o.policy ? { policy: o.policy, source: 'db' } : { backupName: o.backupName ?? 'none' },
      target: { original: true },
    },
    status: {
      phase: o.phase,
      ...(o.backupName ? { backupName: o.backupName } : {}),
      ...(times.started ? { startTime: times.started } : {}),
      ...(times.completed ? { completionTime: times.completed } : {}),
      ...(times.rto !== undefined ? { rtoSeconds: times.rto } : {}),
      conditions: [
        {
          type: 'Succeeded',
          status: o.phase === 'Succeeded' ? 'True' : 'False',
          reason: o.reason ?? (o.phase === 'Succeeded' ? 'Completed' : 'JobFailed'),
          message: '',
          lastTransitionTime: NOW.toISOString(),
        },
      ],
    },
  } as RestoreRequest;
}

function claim(name: string, namespace: string, labels: Record<string, string> = {}): V1PersistentVolumeClaim {
  return { metadata: { name, namespace, labels } };
}

type Observed = Partial<Omit<ObservedObjects, 'backups'>> & { backups?: Backup[] };

function observe(o: Observed, memo?: SamplesMemo): ReturnType<typeof objectSamples> {
  const { backups = [], ...rest } = o;
  return objectSamples(
    { policies: [], restores: [], claims: [], now: NOW, ...rest, backups: BackupsByPolicy.from(backups) },
    memo,
  );
}

/** Samples as `label=value,... value` lines, sorted: compared whole, so a missing or extra series fails. */
const labelText = (labels: Labels) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

function lines(samples: Sample[]): string[] {
  return samples.map((s) => `${labelText(s.labels)} ${s.value}`).sort();
}

/** A histogram's series as `labels count=N sum=S`: the values behind its `_count` and `_sum` lines. */
function histogramLines(counts: HistogramCounts): string[] {
  return [...counts.series()].map((s) => `${labelText(s.labels)} count=${s.count} sum=${s.sum}`).sort();
}

describe('per-source metrics', () => {
  it('exist from the start for every source: never succeeded, RPO counted from the policy creation', () => {
    const s = observe({ policies: [policy()] });
    assert.deepEqual(s.sourceLastSuccess, []);
    const sinceCreated = (NOW.getTime() - Date.parse(CREATED)) / 1000;
    assert.deepEqual(lines(s.sourceRpo), [
      `namespace=acme,policy=tenants,source=db ${sinceCreated}`,
      `namespace=acme,policy=tenants,source=documents ${sinceCreated}`,
    ]);
    assert.deepEqual(lines(s.sourceNeverSucceeded), [
      'namespace=acme,policy=tenants,source=db 1',
      'namespace=acme,policy=tenants,source=documents 1',
    ]);
    assert.deepEqual(lines(s.sourceRpoTarget), [
      `namespace=acme,policy=tenants,source=db ${26 * 3600}`,
      `namespace=acme,policy=tenants,source=documents ${26 * 3600}`,
    ]);
    assert.deepEqual(s.sourceRtoTarget, [], 'no rto objective: no series');
    assert.deepEqual(lines(s.sourceConsecutiveFailures), [
      'namespace=acme,policy=tenants,source=db 0',
      'namespace=acme,policy=tenants,source=documents 0',
    ]);
  });

  it('say what the policy status says: the newest success, not a newer failure nor one being deleted', () => {
    const p = policy({ objectives: { rpo: '1h', rto: '30m' } });
    const backups = [
      backup('db-1', { completed: '2026-11-08T02:10:00Z' }),
      backup('db-2', { completed: '2026-11-09T02:10:00Z' }),
      backup('db-3', { phase: 'Failed', completed: '2026-11-10T02:10:00Z' }),
      backup('db-4', { completed: '2026-11-10T03:00:00Z', deleting: true }),
      backup('docs-1', { source: 'documents', phase: 'Running' }),
    ];
    const s = observe({ policies: [p], backups });
    const status = decidePolicy({
      policy: p,
      backups,
      repositories: new Map([['primary', s3Repository('primary', 'acme')]]),
      restores: [],
      now: NOW,
    }).status;
    const statusSeconds = (source: string) => {
      const time = status.sources?.find((x) => x.name === source)?.lastSuccessTime;
      return time ? seconds(time) : undefined;
    };
    assert.equal(statusSeconds('db'), seconds('2026-11-09T02:10:00Z'));
    assert.deepEqual(lines(s.sourceLastSuccess), [`namespace=acme,policy=tenants,source=db ${statusSeconds('db')}`]);
    assert.equal(statusSeconds('documents'), undefined);
    assert.deepEqual(lines(s.sourceNeverSucceeded), [
      'namespace=acme,policy=tenants,source=db 0',
      'namespace=acme,policy=tenants,source=documents 1',
    ]);
    const rpo = s.sourceRpo.find((x) => x.labels.source === 'db')?.value;
    assert.equal(rpo, NOW.getTime() / 1000 - seconds('2026-11-09T02:10:00Z'));
    assert.deepEqual(lines(s.sourceConsecutiveFailures), [
      'namespace=acme,policy=tenants,source=db 1',
      'namespace=acme,policy=tenants,source=documents 0',
    ]);
    assert.deepEqual(lines(s.sourceRtoTarget), [
      'namespace=acme,policy=tenants,source=db 1800',
      'namespace=acme,policy=tenants,source=documents 1800',
    ]);
  });

  it('leave out a policy being deleted', () => {
    const p = policy();
    p.metadata.deletionTimestamp = NOW.toISOString();
    const s = observe({ policies: [p] });
    assert.deepEqual([...s.sourceRpo, ...s.sourceNeverSucceeded, ...s.sourceRpoTarget], []);
  });
});

describe('audit metric', () => {
  it("is each source's lastAudit.missingObjects; a source never audited has no series", () => {
    const p = policy();
    p.status = {
      sources: [
        {
          name: 'db',
          lastAudit: {
            scheduledTime: '2026-11-10T06:00:00Z',
            completionTime: '2026-11-10T06:00:20Z',
            result: 'Missing',
            missingObjects: 25,
          },
        },
        { name: 'documents' },
      ],
    };
    assert.deepEqual(lines(observe({ policies: [p] }).auditMissingObjects), [
      'namespace=acme,policy=tenants,source=db 25',
    ]);
  });
});

describe('replica metrics', () => {
  const replicated = policy({
    sources: [{ name: 'db', postgres: { connectionSecret: { name: 'pg' }, allDatabases: true } }],
    replicas: [
      { repository: 'copy', region: 'eu', maxLag: '2h' },
      { repository: 'far', region: 'us' },
    ],
  } as Partial<BackupPolicy['spec']>);

  it('lag: age of the newest snapshot held there; a source with no copy counts from its oldest success', () => {
    const s = observe({
      policies: [replicated],
      backups: [
        backup('db-1', {
          completed: '2026-11-10T08:00:00Z',
          copies: [{ repository: 'copy', state: 'Succeeded', completionTime: '2026-11-10T08:05:00Z' }],
        }),
        backup('db-2', { completed: '2026-11-10T10:00:00Z', copies: [{ repository: 'copy', state: 'Failed' }] }),
      ],
    });
    assert.deepEqual(lines(s.replicaLag), [
      `namespace=acme,policy=tenants,repository=copy ${4 * 3600}`,
      `namespace=acme,policy=tenants,repository=far ${4 * 3600}`,
    ]);
    assert.deepEqual(lines(s.replicaLagObjective), [`namespace=acme,policy=tenants,repository=copy ${2 * 3600}`]);
  });

  it('no lag series while nothing succeeded (nothing to copy yet)', () => {
    const s = observe({ policies: [replicated], backups: [backup('db-1', { phase: 'Failed', completed: CREATED })] });
    assert.deepEqual(s.replicaLag, []);
  });
});

describe('backups and restores', () => {
  it('count finished objects by type, result and a bounded reason; histograms take the successful ones', () => {
    const s = observe({
      policies: [policy()],
      backups: [
        backup('a', { started: '2026-11-10T02:00:00Z', completed: '2026-11-10T02:01:40Z', bytes: 1000 }),
        backup('b', { type: 'incremental', started: '2026-11-10T03:00:00Z', completed: '2026-11-10T03:00:10Z' }),
        backup('c', { phase: 'Failed', completed: '2026-11-10T04:00:00Z' }),
        backup('d', { phase: 'Failed', reason: 'SomethingNew', completed: '2026-11-10T05:00:00Z' }),
        backup('e', { phase: 'Failed', reason: 'PodCannotStart', completed: '2026-11-10T06:00:00Z' }),
        backup('f', { phase: 'Running' }),
        backup('g', { completed: '2026-11-10T07:00:00Z', deleting: true }),
      ],
    });
    assert.deepEqual(lines(s.backups), [
      'namespace=acme,policy=tenants,type=full,result=failed,reason=JobFailed 1',
      'namespace=acme,policy=tenants,type=full,result=failed,reason=Other 1',
      'namespace=acme,policy=tenants,type=full,result=failed,reason=PodCannotStart 1',
      'namespace=acme,policy=tenants,type=full,result=succeeded,reason=Completed 1',
      'namespace=acme,policy=tenants,type=incremental,result=succeeded,reason=Completed 1',
    ]);
    assert.deepEqual(histogramLines(s.backupDurations), [
      'namespace=acme,policy=tenants,type=full count=1 sum=100',
      'namespace=acme,policy=tenants,type=incremental count=1 sum=10',
    ]);
    assert.deepEqual(histogramLines(s.backupSizes), ['namespace=acme,policy=tenants,type=full count=1 sum=1000']);
  });

  it("restores by result and reason; the last RTO per policy is the newest successful restore's", () => {
    const s = observe({
      backups: [backup('db-1', { completed: '2026-11-09T02:10:00Z' })],
      restores: [
        restore(
          'r1',
          { phase: 'Succeeded', backupName: 'db-1' },
          { started: '2026-11-10T09:00:00Z', completed: '2026-11-10T09:05:00Z', rto: 320 },
        ),
        restore(
          'r2',
          { phase: 'Succeeded', policy: 'tenants', backupName: 'gone-since' },
          { started: '2026-11-10T10:00:00Z', completed: '2026-11-10T10:02:00Z', rto: 150 },
        ),
        restore('r3', { phase: 'Failed', reason: 'TargetNotAllowed' }),
        restore('r4', { phase: 'Failed', reason: 'Whatever' }),
        restore('r5', { phase: 'Running' }),
      ],
    });
    assert.deepEqual(lines(s.restores), [
      'namespace=acme,result=failed,reason=Other 1',
      'namespace=acme,result=failed,reason=TargetNotAllowed 1',
      'namespace=acme,result=succeeded,reason=Completed 2',
    ]);
    assert.deepEqual(histogramLines(s.restoreDurations), ['namespace=acme count=2 sum=420']);
    assert.deepEqual(lines(s.restoreLastRto), ['namespace=acme,policy=tenants 150']);
  });
});

describe('unprotected volumes', () => {
  it('counts the PVCs of namespaces holding a policy that no source selects, by name or by label', () => {
    const byName = policy(
      { sources: [{ name: 'uploads', volume: { claimName: 'uploads' } }] } as Partial<BackupPolicy['spec']>,
      'uploads',
    );
    const s = observe({
      policies: [policy(), byName, { ...policy(), metadata: { ...policy().metadata, namespace: 'quiet' } }],
      claims: [
        claim('docs-1', 'acme', { app: 'docs' }),
        claim('uploads', 'acme'),
        claim('scratch', 'acme', { app: 'other' }),
        claim('cache', 'acme'),
        claim('snapshot-read', 'acme', { 'app.kubernetes.io/managed-by': 'tidemark' }),
        claim('elsewhere', 'no-policy-here'),
      ],
    });
    assert.deepEqual(lines(s.unprotectedVolumes), ['namespace=acme 2', 'namespace=quiet 0']);
  });
});

describe('restore drill metrics', () => {
  it("say what each source's lastDrill says: the result, and the newest successful drill's time", () => {
    const drilled = policy();
    drilled.status = {
      sources: [
        {
          name: 'db',
          lastDrill: { time: '2026-11-10T04:00:00Z', backup: 'b', result: 'Failed', message: 'damaged', job: 'j' },
          lastDrillSuccessTime: '2026-11-03T04:00:00Z',
        },
        { name: 'documents' },
      ],
    };
    const s = observe({ policies: [drilled] });
    assert.deepEqual(lines(s.drillLastResult), ['namespace=acme,policy=tenants,source=db 0']);
    assert.deepEqual(lines(s.drillLastSuccess), [
      `namespace=acme,policy=tenants,source=db ${seconds('2026-11-03T04:00:00Z')}`,
    ]);
    const passed = structuredClone(drilled);
    const db = passed.status?.sources?.[0];
    if (db?.lastDrill) db.lastDrill.result = 'Succeeded';
    assert.deepEqual(lines(observe({ policies: [passed] }).drillLastResult), [
      'namespace=acme,policy=tenants,source=db 1',
    ]);
    assert.deepEqual(observe({ policies: [policy()] }).drillLastResult, [], 'no drill, no series');
  });
});

describe('samples kept across scrapes (SamplesMemo)', () => {
  /** Everything but the memo's own identity: compared as the exposition sees it. */
  const exposed = (s: ReturnType<typeof objectSamples>) =>
    JSON.stringify(s, (_key, value) =>
      value && typeof value === 'object' && 'bounds' in value ? [...value.series()] : value,
    );

  it('give what a fresh computation gives as Backups, policies and the clock change', () => {
    const index = BackupsByPolicy.from([
      backup('db-1', { completed: '2026-11-08T02:10:00Z', copies: [{ repository: 'dr', state: 'Succeeded' }] }),
      backup('db-2', { phase: 'Failed', completed: '2026-11-09T02:10:00Z' }),
      backup('docs-1', { source: 'documents', completed: '2026-11-09T03:00:00Z', bytes: 5000 }),
    ]);
    const other = { ...backup('x-1', { completed: '2026-11-09T01:00:00Z' }), spec: { policy: 'gone', source: 'db' } };
    index.put(other);
    let p = policy({ replicas: [{ repository: 'dr', region: 'eu-west-1', maxLag: '2h' }] });
    const memo = new SamplesMemo();
    const both = (now: Date) => {
      const observed = { policies: [p], backups: index, restores: [], claims: [], now };
      const kept = objectSamples(observed, memo);
      assert.equal(exposed(kept), exposed(objectSamples(observed)));
      return kept;
    };
    const first = both(NOW);
    assert.ok(
      [...index.groups()].every((g) => memo.groups.has(g.backups)),
      "every policy's Backups are kept, also those of a policy that is gone",
    );

    // The clock alone: the RPO and the lag move, nothing else.
    const later = both(new Date(NOW.getTime() + 3_600_000));
    const rpo = (s: typeof first) => s.sourceRpo.find((x) => x.labels.source === 'db')?.value as number;
    assert.equal(rpo(later), rpo(first) + 3600);
    assert.equal(later.replicaLag[0]?.value, (first.replicaLag[0]?.value as number) + 3600);

    // A Backup replaced, one added, one removed, and the policy changed.
    index.put(backup('db-2', { completed: '2026-11-10T02:10:00Z' }));
    index.put(backup('db-3', { phase: 'Failed', completed: '2026-11-10T03:10:00Z' }));
    index.remove(backup('docs-1', { source: 'documents' }));
    const changed = both(NOW);
    assert.equal(rpo(changed), NOW.getTime() / 1000 - seconds('2026-11-10T02:10:00Z'));
    assert.equal(
      changed.sourceConsecutiveFailures.find((x) => x.labels.source === 'db')?.value,
      1,
      'the newer failure counts',
    );
    p = policy({ objectives: { rpo: '2h' } });
    assert.deepEqual(
      both(NOW).sourceRpoTarget.map((x) => x.value),
      [7200, 7200],
    );
  });

  it("name a restore's policy from its Backup, also when the Backup's policy is not the restore's from", () => {
    const done = {
      ...backup('db-1', { completed: '2026-11-08T02:10:00Z' }),
      spec: { policy: 'nightly', source: 'db' },
    };
    const request = {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name: 'r', namespace: 'acme' },
      spec: { from: { backup: 'db-1' } },
      status: {
        phase: 'Succeeded',
        backupName: 'db-1',
        startTime: '2026-11-10T10:00:00Z',
        completionTime: '2026-11-10T10:05:00Z',
        rtoSeconds: 300,
      },
    } as unknown as RestoreRequest;
    const s = observe({ backups: [done], restores: [request] });
    assert.deepEqual(lines(s.restoreLastRto), ['namespace=acme,policy=nightly 300']);
  });
});
