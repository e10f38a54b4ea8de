// The BackupPolicy controller's decision without a cluster: what to create, what retention removes,
// the status it writes, and when it looks again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { decidePolicy, type PolicyObserved } from './decide.ts';

const at = (iso: string) => new Date(iso);

function policy(spec: Partial<BackupPolicy['spec']> = {}): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name: 'tenants', namespace: 'acme', generation: 3, creationTimestamp: '2026-11-01T00:00:00Z' },
    spec: {
      sources: [{ name: 'documents', volume: { selector: { matchLabels: { app: 'docs' } } } }],
      schedule: { full: { cron: '0 2 * * *' } },
      repository: 'primary',
      objectives: { rpo: '26h' },
      ...spec,
    },
  } as BackupPolicy;
}

function repository(name: string, region: string, initialized = true): BackupRepository {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupRepository',
    metadata: { name, namespace: 'acme' },
    spec: { provider: 's3', region },
    status: { initialized },
  } as unknown as BackupRepository;
}

function backup(name: string, scheduled: string, phase?: string, completed?: string): Backup {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: 'acme', creationTimestamp: scheduled },
    spec: { policy: 'tenants', source: 'documents', type: 'full', scheduledTime: scheduled },
    ...(phase ? { status: { phase, ...(completed ? { completionTime: completed, chainId: name } : {}) } } : {}),
  } as Backup;
}

const observe = (overrides: Partial<PolicyObserved> = {}): PolicyObserved => ({
  policy: policy(),
  backups: [],
  repositories: new Map([['primary', repository('primary', 'eu-central-1')]]),
  now: at('2026-11-23T02:00:00.002Z'),
  ...overrides,
});

describe('decidePolicy', () => {
  it('creates the due run with its deterministic name, labels and scheduled time', () => {
    const decision = decidePolicy(observe());
    assert.equal(decision.create.length, 1);
    const [created] = decision.create;
    assert.equal(created?.metadata.name, 'tenants-documents-full-20261123t0200z');
    assert.equal(created?.spec.scheduledTime, '2026-11-23T02:00:00.000Z');
    assert.deepEqual(created?.metadata.labels, {
      'tidemark.dev/policy': 'tenants',
      'tidemark.dev/source': 'documents',
    });
  });

  it('starts nothing while a run of the same source is still running (no overlap)', () => {
    const running = backup('tenants-documents-full-20261122t020000z', '2026-11-22T02:00:00Z', 'Running');
    const decision = decidePolicy(observe({ backups: [running] }));
    assert.deepEqual(decision.create, []);
  });

  it('looks again just past the next slot, so an early timer cannot miss it', () => {
    const yesterday = backup(
      'tenants-documents-full-20261122t0200z',
      '2026-11-22T02:00:00Z',
      'Succeeded',
      '2026-11-22T02:03:00Z',
    );
    const decision = decidePolicy(observe({ backups: [yesterday], now: at('2026-11-23T01:59:00Z') }));
    assert.deepEqual(decision.create, []);
    assert.equal(decision.requeueAfterMs, 60_000 + 5);
  });

  it('writes no ages to status: two passes a minute apart give the same status', () => {
    const done = backup(
      'tenants-documents-full-20261123t020000z',
      '2026-11-23T02:00:00Z',
      'Succeeded',
      '2026-11-23T02:03:00Z',
    );
    const first = decidePolicy(observe({ backups: [done], now: at('2026-11-23T09:00:00Z') }));
    const second = decidePolicy(
      observe({ policy: { ...policy(), status: first.status }, backups: [done], now: at('2026-11-23T09:01:00Z') }),
    );
    assert.deepEqual(second.status, first.status);
    assert.equal(first.status.lastSuccessTime, '2026-11-23T02:03:00.000Z');
    assert.equal(first.status.sources?.[0]?.lastSuccessfulBackup, 'tenants-documents-full-20261123t020000z');
  });

  it('turns RPOMet false once the objective passes, naming the source and its last success', () => {
    const done = backup(
      'tenants-documents-full-20261120t020000z',
      '2026-11-20T02:00:00Z',
      'Succeeded',
      '2026-11-20T02:03:00Z',
    );
    const suspended = policy({ schedule: { full: { cron: '0 2 * * *' }, suspend: true } });
    const decision = decidePolicy(observe({ policy: suspended, backups: [done], now: at('2026-11-23T09:00:00Z') }));
    const rpo = decision.status.conditions?.find((c) => c.type === 'RPOMet');
    assert.equal(rpo?.status, 'False');
    assert.equal(rpo?.reason, 'RPOBreached');
    assert.match(rpo?.message ?? '', /documents \(last success 2026-11-20T02:03:00.000Z\)/);
  });

  it('within the objective, RPOMet is true and the policy is requeued for the moment it would pass', () => {
    const done = backup(
      'tenants-documents-full-20261123t020000z',
      '2026-11-23T02:00:00Z',
      'Succeeded',
      '2026-11-23T02:03:00Z',
    );
    const suspended = policy({ schedule: { full: { cron: '0 2 * * *' }, suspend: true } });
    const breachAt = at('2026-11-23T02:03:00Z').getTime() + 26 * 3600_000;
    const now = new Date(breachAt - 30_000);
    const decision = decidePolicy(observe({ policy: suspended, backups: [done], now }));
    assert.equal(decision.status.conditions?.find((c) => c.type === 'RPOMet')?.status, 'True');
    assert.equal(decision.requeueAfterMs, 30_000 + 1000);
  });

  it('a replica outside allowedRegions stops every run and says why in Ready', () => {
    const refused = policy({
      replicas: [{ repository: 'replica', region: 'us-east-1' }],
      allowedRegions: ['eu-central-1'],
    });
    const repositories = new Map([
      ['primary', repository('primary', 'eu-central-1')],
      ['replica', repository('replica', 'us-east-1')],
    ]);
    const decision = decidePolicy(observe({ policy: refused, repositories }));
    assert.deepEqual(decision.create, []);
    const ready = decision.status.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'RegionNotAllowed');
    assert.match(ready?.message ?? '', /spec\.replicas\[0\]: replica is in us-east-1, not in allowedRegions/);
  });

  it('retention removes the oldest finished full beyond keepLastFull, saying why', () => {
    const days = ['20', '21', '22'].map((d) =>
      backup(
        `tenants-documents-full-202611${d}t020000z`,
        `2026-11-${d}T02:00:00Z`,
        'Succeeded',
        `2026-11-${d}T02:03:00Z`,
      ),
    );
    const kept = policy({ retention: { keepLastFull: 2 } });
    const decision = decidePolicy(observe({ policy: kept, backups: days, now: at('2026-11-22T09:00:00Z') }));
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['tenants-documents-full-20261120t020000z'],
    );
    assert.ok(decision.remove[0]?.reasons.length);
  });
});

describe('decidePolicy: retention per repository', () => {
  const days = ['19', '20', '21', '22'].map((d) =>
    backup(`tenants-documents-full-202611${d}t0200z`, `2026-11-${d}T02:00:00Z`, 'Succeeded', `2026-11-${d}T02:03:00Z`),
  );
  /** The policy keeping `primary` fulls in the primary and `replica` fulls in the replica. */
  const keeping = (primary: number, replica: number) =>
    policy({
      retention: { keepLastFull: primary },
      replicas: [{ repository: 'replica', region: 'westeurope', retention: { keepLastFull: replica } }],
    });
  const repositories = new Map([
    ['primary', repository('primary', 'eu-central-1')],
    ['replica', repository('replica', 'westeurope')],
  ]);
  const now = at('2026-11-22T09:00:00Z');

  it('a replica keeping longer than the primary: the Backup stays and the primary copy is retired', () => {
    const spec = keeping(2, 3);
    const decision = decidePolicy(observe({ policy: spec, backups: days, repositories, now }));
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['tenants-documents-full-20261119t0200z'],
      'kept by neither: removed',
    );
    assert.deepEqual(
      decision.retire.map((r) => [r.name, r.repositories]),
      [['tenants-documents-full-20261120t0200z', ['primary']]],
    );
    assert.match(decision.retire[0]?.reasons.join(';') ?? '', /^primary: /);
  });

  it('a Backup already retired from those repositories is not retired again', () => {
    const spec = keeping(2, 3);
    const retired = days.map((b) =>
      b.metadata.name === 'tenants-documents-full-20261120t0200z'
        ? { ...b, metadata: { ...b.metadata, annotations: { 'tidemark.dev/retired-from': 'primary' } } }
        : b,
    );
    assert.deepEqual(decidePolicy(observe({ policy: spec, backups: retired, repositories, now })).retire, []);
  });

  it('a replica keeping less: its copies of what the primary keeps are retired', () => {
    const spec = keeping(3, 1);
    const decision = decidePolicy(observe({ policy: spec, backups: days, repositories, now }));
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['tenants-documents-full-20261119t0200z'],
    );
    assert.deepEqual(
      decision.retire.map((r) => [r.name, r.repositories]),
      [
        ['tenants-documents-full-20261120t0200z', ['replica']],
        ['tenants-documents-full-20261121t0200z', ['replica']],
      ],
    );
  });
});
