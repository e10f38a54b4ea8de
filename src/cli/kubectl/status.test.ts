import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupPolicy } from '../../api/kinds.ts';
import { formatTable } from './output.ts';
import { statusRows, statusTable } from './status.ts';

const now = new Date('2026-03-30T12:00:00Z');

function policy(status: BackupPolicy['status'], spec: Partial<BackupPolicy['spec']> = {}): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name: 'nightly', namespace: 'tenants' },
    spec: {
      sources: [
        { name: 'orders', postgres: { connectionSecret: { name: 'pg' }, databases: ['orders'] } },
        { name: 'documents', volume: { claimName: 'documents' } },
      ],
      schedule: { full: { cron: '0 1 * * *' } },
      repository: 'primary',
      objectives: { rpo: '1h' },
      replicas: [{ repository: 'replica', region: 'westeurope', maxLag: '2h' }],
      ...spec,
    } as BackupPolicy['spec'],
    ...(status ? { status } : {}),
  };
}

const fresh = policy({
  conditions: [{ type: 'RPOMet', status: 'False', reason: 'NeverSucceeded', lastTransitionTime: now.toISOString() }],
  sources: [
    {
      name: 'orders',
      lastSuccessTime: '2026-03-30T11:45:00Z',
      lastSuccessfulBackup: 'nightly-orders-full-20260330t1145z',
      nextRunTime: '2026-03-31T01:00:00Z',
    },
    { name: 'documents', nextRunTime: '2026-03-31T01:00:00Z' },
  ],
  replicas: [{ repository: 'replica', newestSnapshotTime: '2026-03-30T11:30:00Z' }],
});

test('each source of a policy is a row: its last success and RPO, or never', () => {
  const [orders, documents] = statusRows(fresh, now);
  assert.deepEqual(orders, {
    namespace: 'tenants',
    policy: 'nightly',
    source: 'orders',
    lastSuccessTime: '2026-03-30T11:45:00Z',
    lastSuccessfulBackup: 'nightly-orders-full-20260330t1145z',
    rpoSeconds: 900,
    rpoTargetSeconds: 3600,
    rpoMet: 'False',
    nextRunTime: '2026-03-31T01:00:00Z',
    suspended: false,
    replicas: [{ repository: 'replica', lagSeconds: 1800, maxLagSeconds: 7200 }],
    drill: 'none',
  });
  assert.equal(documents?.lastSuccessTime, undefined);
  assert.equal(documents?.rpoSeconds, undefined);
});

test('a policy the operator has not seen yet shows every source as never, with no replica copy', () => {
  const rows = statusRows(policy(undefined), now);
  assert.deepEqual(
    rows.map((r) => [r.source, r.rpoSeconds, r.nextRunTime, r.replicas]),
    [
      ['orders', undefined, undefined, [{ repository: 'replica', maxLagSeconds: 7200 }]],
      ['documents', undefined, undefined, [{ repository: 'replica', maxLagSeconds: 7200 }]],
    ],
  );
});

test('the table shows ages, the RPO verdict, lag against its objective, the next run and drills', () => {
  assert.equal(
    formatTable(statusTable(statusRows(fresh, now), now, false)),
    [
      'POLICY    SOURCE      LAST SUCCESS   RPO     RPO TARGET   RPO MET   REPLICA LAG      NEXT RUN   DRILL',
      'nightly   orders      15m ago        15m     1h           NO        replica=30m/2h   in 13h     none',
      'nightly   documents   never          never   1h           NO        replica=30m/2h   in 13h     none',
      '',
    ].join('\n'),
  );
});

test('suspended schedules, missing objectives, drills not running and all namespaces read as such', () => {
  const quiet = policy(
    {
      conditions: [
        { type: 'Verification', status: 'False', reason: 'NotImplemented', lastTransitionTime: now.toISOString() },
      ],
    },
    {
      schedule: { full: { cron: '0 1 * * *' }, suspend: true },
      objectives: undefined,
      replicas: undefined,
      verification: { restoreDrill: { cron: '0 3 * * 0' } },
    } as Partial<BackupPolicy['spec']>,
  );
  const [header, first] = statusTable(statusRows(quiet, now), now, true);
  assert.deepEqual(header?.slice(0, 2), ['NAMESPACE', 'POLICY']);
  assert.deepEqual(first, [
    'tenants',
    'nightly',
    'orders',
    'never',
    'never',
    '-',
    '-',
    '-',
    'suspended',
    'NotImplemented',
  ]);
});

test("a drilled source shows its newest drill's result and RTO; one drills do not cover, the Verification reason", () => {
  const drilled = policy(
    {
      conditions: [
        { type: 'Verification', status: 'False', reason: 'NotCovered', lastTransitionTime: now.toISOString() },
      ],
      sources: [
        {
          name: 'orders',
          lastDrill: {
            time: '2026-03-30T04:00:00Z',
            backup: 'b',
            result: 'Succeeded',
            rtoSeconds: 42,
            message: 'ok',
            job: 'j',
          },
        },
        { name: 'documents' },
      ],
    },
    { verification: { restoreDrill: { cron: '0 4 * * *', postgres: { connectionSecret: { name: 'drills' } } } } },
  );
  assert.deepEqual(
    statusRows(drilled, now).map((r) => r.drill),
    ['Succeeded rto=42s', 'NotCovered'],
  );
});
