// The BackupPolicy controller's decision without a cluster: what to create, what retention removes,
// the status it writes, and when it looks again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
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
  restores: [],
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
    assert.equal(decision.requeueAfterMs, 30_000 + 5);
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

const condition = (d: ReturnType<typeof decidePolicy>, type: string) =>
  d.status.conditions?.find((c) => c.type === type);
const suspendedPolicy = (spec: Partial<BackupPolicy['spec']> = {}) =>
  policy({ schedule: { full: { cron: '0 2 * * *' }, suspend: true }, ...spec });

describe('decidePolicy: no invented success times', () => {
  const failed = backup(
    'tenants-documents-full-20261101t0200z',
    '2026-11-01T02:00:00Z',
    'Failed',
    '2026-11-01T02:01:00Z',
  );

  it('a source that never succeeded has no lastSuccessTime, and neither has the policy', () => {
    const decision = decidePolicy(observe({ policy: suspendedPolicy(), backups: [failed] }));
    assert.equal(decision.status.lastSuccessTime, undefined);
    assert.equal(decision.status.sources?.[0]?.lastSuccessTime, undefined);
  });

  it('within the first rpo window after creation RPOMet is Unknown, and the policy looks again when it ends', () => {
    const now = at('2026-11-02T01:58:00Z'); // created 2026-11-01T00:00Z, rpo 26h: window ends 2026-11-02T02:00Z
    const decision = decidePolicy(observe({ policy: suspendedPolicy(), now }));
    const rpo = condition(decision, 'RPOMet');
    assert.equal(rpo?.status, 'Unknown');
    assert.equal(rpo?.reason, 'FirstBackupPending');
    assert.match(rpo?.message ?? '', /documents: never succeeded; .*first RPO window .*until 2026-11-02T02:00:00.000Z/);
    assert.equal(decision.requeueAfterMs, 120_000 + 5);
  });

  it('once the policy is older than its rpo, a source that never succeeded makes RPOMet False NoSuccessfulBackup', () => {
    const decision = decidePolicy(observe({ policy: suspendedPolicy(), backups: [failed] }));
    const rpo = condition(decision, 'RPOMet');
    assert.equal(rpo?.status, 'False');
    assert.equal(rpo?.reason, 'NoSuccessfulBackup');
    assert.equal(rpo?.message, 'RPO 26h not met by: documents (never succeeded)');
  });

  it('deleted Backups leave no success behind: a policy that had one shows none', () => {
    const done = backup(
      'tenants-documents-full-20261122t0200z',
      '2026-11-22T02:00:00Z',
      'Succeeded',
      '2026-11-22T02:03:00Z',
    );
    const before = decidePolicy(observe({ policy: suspendedPolicy(), backups: [done] }));
    assert.equal(before.status.lastSuccessTime, '2026-11-22T02:03:00.000Z');
    const after = decidePolicy(observe({ policy: { ...suspendedPolicy(), status: before.status }, backups: [] }));
    assert.equal(after.status.lastSuccessTime, undefined);
    assert.equal(condition(after, 'RPOMet')?.reason, 'NoSuccessfulBackup');
  });

  it('the policy is as fresh as its stalest source; one source that never succeeded takes the policy time away', () => {
    const two = suspendedPolicy({
      sources: [
        { name: 'documents', volume: { claimName: 'docs' } },
        { name: 'ledger', volume: { claimName: 'ledger' } },
      ],
    });
    const done = backup(
      'tenants-documents-full-20261122t0200z',
      '2026-11-22T02:00:00Z',
      'Succeeded',
      '2026-11-22T02:03:00Z',
    );
    const decision = decidePolicy(observe({ policy: two, backups: [done] }));
    assert.equal(decision.status.lastSuccessTime, undefined);
    assert.equal(decision.status.sources?.[0]?.lastSuccessTime, '2026-11-22T02:03:00Z');
    assert.match(condition(decision, 'RPOMet')?.message ?? '', /ledger \(never succeeded\)/);
  });

  it('without an rpo objective there is no RPOMet condition (a stale one is removed)', () => {
    const first = decidePolicy(observe({ policy: suspendedPolicy() }));
    assert.ok(condition(first, 'RPOMet'));
    const noRpo = { ...suspendedPolicy({ objectives: {} }), status: first.status };
    assert.equal(condition(decidePolicy(observe({ policy: noRpo })), 'RPOMet'), undefined);
  });
});

describe('decidePolicy: replica health', () => {
  const repositories = new Map([
    ['primary', repository('primary', 'eu-central-1')],
    ['replica', repository('replica', 'westeurope')],
  ]);
  const replicated = (maxLag?: string) =>
    suspendedPolicy({ replicas: [{ repository: 'replica', region: 'westeurope', ...(maxLag ? { maxLag } : {}) }] });
  const copied = (name: string, completed: string, state: string, copiedAt?: string, extra: object = {}): Backup => {
    const b = backup(name, completed, 'Succeeded', completed);
    return {
      ...b,
      status: {
        ...b.status,
        repositories: [
          { repository: 'primary', role: 'primary', state: 'Succeeded', completionTime: completed },
          {
            repository: 'replica',
            role: 'replica',
            state,
            ...(copiedAt ? { completionTime: copiedAt } : {}),
            ...extra,
          },
        ],
      },
    } as Backup;
  };
  const now = at('2026-11-23T03:00:00Z');

  it('reports the newest copy and snapshot times, True within maxLag, requeued for when it passes', () => {
    const b = copied('b1', '2026-11-23T02:03:00Z', 'Succeeded', '2026-11-23T02:05:00Z');
    const decision = decidePolicy(observe({ policy: replicated('1h'), backups: [b], repositories, now }));
    assert.deepEqual(decision.status.replicas, [
      {
        repository: 'replica',
        lastCopyTime: '2026-11-23T02:05:00.000Z',
        newestSnapshotTime: '2026-11-23T02:03:00.000Z',
      },
    ]);
    assert.equal(condition(decision, 'ReplicasHealthy')?.status, 'True');
    assert.equal(decision.requeueAfterMs, 3 * 60_000 + 5);
  });

  it('False LagExceeded once the newest snapshot held there is older than maxLag', () => {
    const b = copied('b1', '2026-11-23T02:03:00Z', 'Succeeded', '2026-11-23T02:05:00Z');
    const decision = decidePolicy(observe({ policy: replicated('30m'), backups: [b], repositories, now }));
    const health = condition(decision, 'ReplicasHealthy');
    assert.equal(health?.status, 'False');
    assert.equal(health?.reason, 'LagExceeded');
    assert.match(
      health?.message ?? '',
      /replica: newest snapshot 2026-11-23T02:03:00.000Z \(documents\) is older than maxLag 30m/,
    );
  });

  it('False ReplicationFailing when the newest settled copy failed, naming the next attempt; no maxLag needed', () => {
    const older = copied('b1', '2026-11-22T02:03:00Z', 'Succeeded', '2026-11-22T02:05:00Z');
    const newer = copied('b2', '2026-11-23T02:03:00Z', 'Failed', undefined, {
      message: 'azure unreachable',
      attempts: 2,
      nextRetryTime: '2026-11-23T03:10:00Z',
    });
    const decision = decidePolicy(observe({ policy: replicated(), backups: [older, newer], repositories, now }));
    const health = condition(decision, 'ReplicasHealthy');
    assert.equal(health?.reason, 'ReplicationFailing');
    assert.match(
      health?.message ?? '',
      /replica: copy of b2 failed \(attempt 2\): azure unreachable; next attempt at 2026-11-23T03:10:00Z/,
    );
    assert.equal(decision.status.replicas?.[0]?.newestSnapshotTime, '2026-11-22T02:03:00.000Z');
  });

  it('Unknown CopyPending while a success has no copy yet; a copy in progress after an older copy is healthy', () => {
    const pending = copied('b1', '2026-11-23T02:03:00Z', 'Running');
    const first = decidePolicy(observe({ policy: replicated('2h'), backups: [pending], repositories, now }));
    assert.equal(condition(first, 'ReplicasHealthy')?.reason, 'CopyPending');
    assert.deepEqual(first.status.replicas, [{ repository: 'replica' }]);
    const older = copied('b0', '2026-11-23T01:03:00Z', 'Succeeded', '2026-11-23T01:05:00Z');
    const second = decidePolicy(observe({ policy: replicated('2h'), backups: [older, pending], repositories, now }));
    assert.equal(condition(second, 'ReplicasHealthy')?.status, 'True');
  });

  it('a failed copy stays ReplicationFailing after retention deletes its Backup, until a later copy succeeds', () => {
    const failed = (name: string, completed: string, failedAt: string) =>
      copied(name, completed, 'Failed', undefined, { message: 'azure unreachable', failureTime: failedAt });
    // Retention is deleting the Backup whose copy failed; the newer ones' copies are still running.
    const deleting = {
      ...failed('b1', '2026-11-23T02:03:00Z', '2026-11-23T02:09:00Z'),
      metadata: { name: 'b1', namespace: 'acme', deletionTimestamp: '2026-11-23T02:10:00Z' },
    } as Backup;
    const running = copied('b2', '2026-11-23T02:33:00Z', 'Running');
    const first = decidePolicy(observe({ policy: replicated('1h'), backups: [deleting, running], repositories, now }));
    assert.equal(condition(first, 'ReplicasHealthy')?.reason, 'ReplicationFailing');
    assert.match(condition(first, 'ReplicasHealthy')?.message ?? '', /replica: copy of b1 failed: azure unreachable/);
    const lastFailure = {
      backup: 'b1',
      source: 'documents',
      time: '2026-11-23T02:09:00Z',
      message: 'azure unreachable',
    };
    assert.deepEqual(first.status.replicas?.[0]?.lastFailure, lastFailure);

    // b1 is gone: the policy's own status still says so, and deciding again writes the same status.
    const remembered = { ...replicated('1h'), status: first.status };
    const second = decidePolicy(observe({ policy: remembered, backups: [running], repositories, now }));
    const health = condition(second, 'ReplicasHealthy');
    assert.equal(health?.reason, 'ReplicationFailing');
    assert.match(
      health?.message ?? '',
      /replica: copy of b1 failed: azure unreachable \(at 2026-11-23T02:09:00Z; no copy of documents succeeded there since\)/,
    );
    assert.deepEqual(
      second.status,
      decidePolicy(observe({ policy: { ...remembered, status: second.status }, backups: [running], repositories, now }))
        .status,
    );

    // A copy that completed after the failure ends it.
    const done = copied('b2', '2026-11-23T02:33:00Z', 'Succeeded', '2026-11-23T02:40:00Z');
    const third = decidePolicy(observe({ policy: remembered, backups: [done], repositories, now }));
    assert.equal(condition(third, 'ReplicasHealthy')?.status, 'True');
    assert.equal(third.status.replicas?.[0]?.lastFailure, undefined);
  });

  it('failures of two sources keep a stable status (no rewrite on every decision)', () => {
    const twoSources = replicated();
    twoSources.spec.sources = [
      { name: 'documents', volume: { claimName: 'documents' } },
      { name: 'uploads', volume: { claimName: 'uploads' } },
    ] as BackupPolicy['spec']['sources'];
    const failedOf = (name: string, source: string, failedAt?: string) => {
      const b = copied(name, '2026-11-23T02:03:00Z', 'Failed', undefined, {
        message: 'down',
        ...(failedAt ? { failureTime: failedAt } : {}),
      });
      return { ...b, spec: { ...b.spec, source } } as Backup;
    };
    const backups = [failedOf('d1', 'documents', '2026-11-23T02:05:00Z'), failedOf('u1', 'uploads')];
    const first = decidePolicy(observe({ policy: twoSources, backups, repositories, now }));
    assert.equal(first.status.replicas?.[0]?.lastFailure?.backup, 'd1', 'the newest failure is the one kept');
    const again = decidePolicy(
      observe({ policy: { ...twoSources, status: first.status }, backups, repositories, now }),
    );
    assert.deepEqual(again.status, first.status);
  });

  it('no replicas, no condition', () => {
    assert.equal(condition(decidePolicy(observe({ policy: suspendedPolicy() })), 'ReplicasHealthy'), undefined);
  });
});

describe('decidePolicy: verification', () => {
  it('says which sources restore drills do not cover; audits run for every source, so they alone raise nothing', () => {
    // Volume sources drill into a scratch PVC: no setting needed.
    const drilled = suspendedPolicy({ verification: { restoreDrill: { cron: '0 3 * * 0' } } });
    const drill = condition(decidePolicy(observe({ policy: drilled })), 'Verification');
    assert.equal(drill?.status, 'True');
    assert.equal(drill?.message, 'restore drills cover every source');
    assert.equal(condition(decidePolicy(observe({ policy: suspendedPolicy() })), 'Verification'), undefined);
    const audited = suspendedPolicy({ verification: { audit: { cron: '0 3 * * 0' } } });
    assert.equal(condition(decidePolicy(observe({ policy: audited })), 'Verification'), undefined);
  });

  it('says restore drills run once every source has a drill server of its engine', () => {
    const sources = [{ name: 'orders', postgres: { connectionSecret: { name: 'pg' }, databases: ['orders'] } }];
    const drill = { cron: '0 3 * * 0' };
    const without = suspendedPolicy({ sources, verification: { restoreDrill: drill } });
    assert.match(
      condition(decidePolicy(observe({ policy: without })), 'Verification')?.message ?? '',
      /orders \(set verification.restoreDrill.postgres: its drill server\)/,
    );
    const covered = suspendedPolicy({
      sources,
      verification: { restoreDrill: { ...drill, postgres: { connectionSecret: { name: 'drills' } } } },
    });
    const verification = condition(decidePolicy(observe({ policy: covered })), 'Verification');
    assert.equal(verification?.status, 'True');
    assert.equal(verification?.reason, 'DrillsScheduled');
  });
});

describe('decidePolicy: retention holds', () => {
  const days = ['20', '21', '22'].map((d) =>
    backup(`b${d}`, `2026-11-${d}T02:00:00Z`, 'Succeeded', `2026-11-${d}T02:03:00Z`),
  );
  const keepOne = suspendedPolicy({ retention: { keepLastFull: 1 } });
  const now = at('2026-11-22T09:00:00Z');
  const restore = (name: string, from: string, phase?: string): RestoreRequest =>
    ({
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name, namespace: 'acme' },
      spec: { from: { policy: 'tenants', source: 'documents' }, target: { volume: { claimName: 'x' } } },
      status: { backupName: from, ...(phase ? { phase } : {}) },
    }) as RestoreRequest;

  it('a Backup a RestoreRequest that has not ended resolved to stays, and the policy says why', () => {
    const decision = decidePolicy(
      observe({ policy: keepOne, backups: days, now, restores: [restore('qa', 'b20', 'PendingApproval')] }),
    );
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['b21'],
    );
    assert.deepEqual(decision.status.retentionHolds, [
      { backup: 'b20', reason: 'RestoreRequest qa has not ended; otherwise removed: beyond keepLastFull 1 (#3)' },
    ]);
    assert.deepEqual(
      decision.events.filter((e) => e.reason === 'BackupHeld').map((e) => e.message),
      ['retention keeps b20 for now: RestoreRequest qa has not ended; otherwise removed: beyond keepLastFull 1 (#3)'],
    );
  });

  it('an ended RestoreRequest holds nothing', () => {
    const decision = decidePolicy(
      observe({ policy: keepOne, backups: days, now, restores: [restore('qa', 'b20', 'Succeeded')] }),
    );
    assert.deepEqual(decision.remove.map((r) => r.name).sort(), ['b20', 'b21']);
  });

  it('a snapshot inside its repository immutability period stays until it ends, and the policy looks again then', () => {
    const locked = repository('primary', 'eu-central-1');
    locked.spec.immutability = { period: '2d' };
    const decision = decidePolicy(
      observe({ policy: keepOne, backups: days, now, repositories: new Map([['primary', locked]]) }),
    );
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['b20'],
      'b20 left its period at 2026-11-22T02:03Z',
    );
    assert.deepEqual(decision.status.retentionHolds, [
      {
        backup: 'b21',
        reason: 'immutable in primary until 2026-11-23T02:03:00.000Z; otherwise removed: beyond keepLastFull 1 (#2)',
      },
    ]);
  });
});

describe('decidePolicy: Backups being deleted', () => {
  it('vouch for no success and are not removed again by retention', () => {
    const done = backup('b22', '2026-11-22T02:00:00Z', 'Succeeded', '2026-11-22T02:03:00Z');
    const deleting = { ...done, metadata: { ...done.metadata, deletionTimestamp: '2026-11-22T03:00:00Z' } };
    const older = backup('b21', '2026-11-21T02:00:00Z', 'Succeeded', '2026-11-21T02:03:00Z');
    const decision = decidePolicy(
      observe({
        policy: policy({ schedule: { full: { cron: '0 2 * * *' }, suspend: true }, retention: { keepLastFull: 1 } }),
        backups: [older, deleting],
      }),
    );
    assert.equal(decision.status.lastSuccessTime, '2026-11-21T02:03:00.000Z');
    assert.deepEqual(decision.remove, [], 'b21 is now the newest kept; b22 is not deleted twice');
  });
});

describe('decidePolicy: immutability per repository', () => {
  it("a replica's immutable copy is not retired while the primary's rule drops it; the primary copy is", () => {
    const days = ['20', '21', '22'].map((d) => {
      const b = backup(`b${d}`, `2026-11-${d}T02:00:00Z`, 'Succeeded', `2026-11-${d}T02:03:00Z`);
      const copied = `2026-11-${d}T02:10:00Z`;
      return {
        ...b,
        status: {
          ...b.status,
          repositories: [
            { repository: 'primary', role: 'primary', state: 'Succeeded', completionTime: `2026-11-${d}T02:03:00Z` },
            { repository: 'replica', role: 'replica', state: 'Succeeded', completionTime: copied },
          ],
        },
      } as Backup;
    });
    const locked = repository('replica', 'westeurope');
    locked.spec.immutability = { period: '1d' };
    const spec = suspendedPolicy({
      retention: { keepLastFull: 1 },
      replicas: [{ repository: 'replica', region: 'westeurope', retention: { keepLastFull: 1 } }],
    });
    const repositories = new Map([
      ['primary', repository('primary', 'eu-central-1')],
      ['replica', locked],
    ]);
    const decision = decidePolicy(
      observe({ policy: spec, backups: days, repositories, now: at('2026-11-22T02:05:00Z') }),
    );
    // b20 (copied 2026-11-20T02:10Z) left the replica's period; b21 (until 2026-11-22T02:10Z) has not.
    assert.deepEqual(
      decision.remove.map((r) => r.name),
      ['b20'],
    );
    assert.deepEqual(
      decision.retire.map((r) => [r.name, r.repositories]),
      [['b21', ['primary']]],
    );
  });
});

describe('decidePolicy: suspended schedules', () => {
  it('announce no next run', () => {
    const decision = decidePolicy(observe({ policy: suspendedPolicy() }));
    assert.deepEqual(decision.create, []);
    assert.equal(decision.status.nextRunTime, undefined);
    assert.equal(decision.status.sources?.[0]?.nextRunTime, undefined);
  });
});
