// The audit decision without a cluster: when an audit Job is due, what it gets, and what its report
// becomes in the policy status and Events.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { AuditReport } from '../../agent/tasks/audit.ts';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { LastAudit } from '../../api/backuppolicy.ts';
import type { Backup, BackupPolicy } from '../../api/kinds.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { s3Repository } from '../testing/objects.ts';
import { type AuditObserved, decideAudits, dueAudit, summary } from './decide.ts';
import { AUDITED_BACKUP, auditJobName } from './job.ts';

const ns = 'tenants';
const created = '2026-11-01T00:00:00Z';
const at = (iso: string) => new Date(iso);

function policy(lastAudits: Record<string, LastAudit> = {}): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name: 'nightly', namespace: ns, uid: 'uid-nightly-1234', creationTimestamp: created },
    spec: {
      sources: [
        { name: 'db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['shop'] } },
        { name: 'docs', volume: { claimName: 'documents', excludes: ['*.tmp'] } },
      ],
      schedule: { full: { cron: '0 2 * * *' } },
      repository: 'primary',
      verification: { audit: { cron: '0 6 * * *', timestampColumns: { 'public.orders': 'placed' } } },
    },
    status: { sources: Object.entries(lastAudits).map(([name, lastAudit]) => ({ name, lastAudit })) },
  };
}

const succeeded = (name: string, source: string, completionTime: string): Backup => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'Backup',
  metadata: { name, namespace: ns },
  spec: { policy: 'nightly', source, type: 'full' },
  status: { phase: 'Succeeded', completionTime, snapshotId: `${name.length}`.padEnd(64, 'a') },
});

const observe = (overrides: Partial<AuditObserved> = {}): AuditObserved => ({
  policy: policy(),
  backups: [
    succeeded('nightly-db-1', 'db', '2026-11-02T02:05:00Z'),
    succeeded('nightly-db-2', 'db', '2026-11-03T02:05:00Z'),
    succeeded('nightly-docs-2', 'docs', '2026-11-03T02:01:00Z'),
  ],
  repository: s3Repository('primary', ns),
  jobs: new Map(),
  claims: new Map([['docs', ['documents']]]),
  settings: { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' },
  now: at('2026-11-03T06:00:30Z'),
  ...overrides,
});

const slot = at('2026-11-03T06:00:00Z');
/** The audit Job of a source for a slot, as the Job informer shows it: running, or ended with a result. */
function auditJobOf(
  source: string,
  jobSlot: Date,
  type?: 'Complete' | 'Failed',
  result?: AgentResult,
): [string, JobObserved] {
  const job = decideAudits(observe({ now: new Date(jobSlot.getTime() + 1000) })).createJobs.find(
    (j) => j.metadata?.labels?.['tidemark.dev/source'] === source,
  ) as k8s.V1Job;
  if (type) job.status = { conditions: [{ type, status: 'True' }] };
  return [job.metadata?.name ?? '', { job, ...(result ? { result } : {}) }];
}
const ended = (source: string, type: 'Complete' | 'Failed', result?: AgentResult) =>
  auditJobOf(source, slot, type, result);

const report = (missingObjects: number, items: NonNullable<AuditReport['tables']>['differences']['items']) => ({
  snapshotId: 'a'.repeat(64),
  snapshotTime: '2026-11-03T02:00:00Z',
  missingObjects,
  tables: { compared: 4, differences: { items, total: items.length } },
});

describe('decideAudits', () => {
  test('nothing before the first slot; the next slot is when to look again', () => {
    const decision = decideAudits(observe({ now: at('2026-11-01T05:00:00Z') }));
    assert.deepEqual(decision.createJobs, []);
    assert.deepEqual(decision.audits, []);
    assert.equal(decision.requeueAfterMs, 3600_000 + 5);
  });

  test('at a slot, one Job per source against its latest successful Backup, the volume mounted read-only', () => {
    const decision = decideAudits(observe());
    assert.equal(decision.createJobs.length, 2);
    const [db, docs] = decision.createJobs;
    assert.equal(db?.metadata?.name, auditJobName(policy(), 'db', slot));
    assert.equal(db?.metadata?.annotations?.[AUDITED_BACKUP], 'nightly-db-2');
    assert.equal(db?.metadata?.ownerReferences?.[0]?.kind, 'BackupPolicy');
    const container = db?.spec?.template.spec?.containers[0];
    assert.deepEqual(container?.args, ['agent', 'audit']);
    const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.TIDEMARK_SNAPSHOT, succeeded('nightly-db-2', 'db', '').status?.snapshotId);
    assert.equal(env.TIDEMARK_TIMESTAMP_COLUMNS, '{"public.orders":"placed"}');
    assert.match(env.TIDEMARK_SOURCE ?? '', /^postgresql:\/\/.*\/shop$/);
    const volume = docs?.spec?.template.spec;
    assert.deepEqual(volume?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim, {
      claimName: 'documents',
      readOnly: true,
    });
    assert.ok(volume?.containers[0]?.volumeMounts?.find((m) => m.mountPath === '/data')?.readOnly);
    const volumeEnv = Object.fromEntries((volume?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(volumeEnv.TIDEMARK_EXCLUDES, '["*.tmp"]');
  });

  test('a finished audit becomes lastAudit with an Event naming the counts; a slot recorded is not run again', () => {
    const missing = report(22, [
      { name: 'public.orders', recorded: 500, live: 517, missing: 17, removed: 0 },
      { name: 'public.customers', recorded: 40, live: 45, missing: 5, removed: 0 },
    ]);
    const jobs = new Map([
      ended('db', 'Complete', { ok: true, ...missing }),
      ended('docs', 'Complete', { ok: true, ...report(0, []) }),
    ]);
    const decision = decideAudits(observe({ jobs }));
    assert.deepEqual(decision.createJobs, []);
    const db = decision.audits.find((a) => a.source === 'db')?.lastAudit;
    assert.equal(db?.result, 'Missing');
    assert.equal(db?.missingObjects, 22);
    assert.equal(db?.backup, 'nightly-db-2');
    assert.equal(db?.scheduledTime, slot.toISOString());
    assert.deepEqual(
      db?.tables?.differences.map((d) => d.name),
      ['public.orders', 'public.customers'],
    );
    assert.deepEqual(
      decision.events.map((e) => [e.type, e.reason, e.message]),
      [
        [
          'Warning',
          'AuditFoundMissing',
          'source db: 22 rows missing in 2 of 4 tables (public.orders 17, public.customers 5), compared with Backup nightly-db-2',
        ],
        ['Normal', 'AuditClean', 'source docs: no rows missing in 4 tables, compared with Backup nightly-docs-2'],
      ],
    );
    const done = policy(Object.fromEntries(decision.audits.map((a) => [a.source, a.lastAudit])));
    const again = decideAudits(observe({ policy: done, jobs }));
    assert.deepEqual([again.createJobs, again.audits, again.events], [[], [], []]);
    assert.equal(dueAudit(done, 'db', at('2026-11-04T06:00:00Z'))?.slot.toISOString(), '2026-11-04T06:00:00.000Z');
  });

  test('a failed audit says why and keeps the numbers of the last one that compared', () => {
    const previous: LastAudit = {
      scheduledTime: '2026-11-02T06:00:00Z',
      completionTime: '2026-11-02T06:00:10Z',
      result: 'Missing',
      backup: 'nightly-db-1',
      missingObjects: 3,
    };
    const jobs = new Map([
      ended('db', 'Failed', {
        ok: false,
        error: { code: 'SourceUnavailable', message: 'cannot connect to postgresql://app@db:5432/shop' },
      }),
    ]);
    const decision = decideAudits(observe({ policy: policy({ db: previous }), jobs }));
    const db = decision.audits.find((a) => a.source === 'db')?.lastAudit;
    assert.equal(db?.result, 'Failed');
    assert.equal(db?.message, 'cannot connect to postgresql://app@db:5432/shop');
    assert.equal(db?.missingObjects, 3);
    assert.equal(db?.backup, 'nightly-db-1');
    assert.equal(decision.events.find((e) => e.reason === 'AuditFailed')?.type, 'Warning');
  });

  test('no successful backup: skipped, said once for the slot; a refused Job fails the audit', () => {
    const none = decideAudits(observe({ backups: [] }));
    assert.deepEqual(none.createJobs, []);
    assert.deepEqual(
      none.audits.map((a) => [a.source, a.lastAudit.result]),
      [
        ['db', 'NoBackup'],
        ['docs', 'NoBackup'],
      ],
    );
    assert.ok(none.events.every((e) => e.reason === 'AuditSkipped'));
    const name = auditJobName(policy(), 'db', slot);
    const refused = decideAudits(observe({ rejected: new Map([[name, `Job ${name}: exceeded quota`]]) }));
    assert.equal(refused.audits.find((a) => a.source === 'db')?.lastAudit.result, 'Failed');
    assert.equal(refused.createJobs.length, 1, 'the other source still gets its Job');
  });
});

test('audits never overlap: a slot that comes while one runs waits; the late result is recorded, then the latest slot runs', () => {
  const dayLater = (days: number) => new Date(slot.getTime() + days * 86_400_000);
  const running = new Map([auditJobOf('db', slot)]);
  const waiting = decideAudits(observe({ jobs: running, now: dayLater(2) }));
  assert.deepEqual(
    waiting.createJobs.map((j) => j.metadata?.labels?.['tidemark.dev/source']),
    ['docs'],
    'db waits for its running audit',
  );
  const done = new Map([auditJobOf('db', slot, 'Complete', { ok: true, ...report(0, []) })]);
  const after = decideAudits(observe({ jobs: done, now: dayLater(2) }));
  assert.equal(after.audits.find((a) => a.source === 'db')?.lastAudit.scheduledTime, slot.toISOString());
  const next = after.createJobs.find((j) => j.metadata?.labels?.['tidemark.dev/source'] === 'db');
  assert.equal(next?.metadata?.name, auditJobName(policy(), 'db', dayLater(2)), 'the latest slot, once');
});

describe('summary', () => {
  test('volumes: files not backed up by name, then changed and removed counts', () => {
    const files = (items: string[], total: number) => ({ items, total });
    assert.equal(
      summary({
        snapshotId: 'a',
        snapshotTime: 't',
        missingObjects: 5,
        files: {
          live: 10,
          missing: files(['/a', '/b', '/c', '/d'], 4),
          removed: files([], 0),
          changed: { items: [{ path: '/e', change: 'size' }], total: 1 },
        },
      }),
      '4 files not backed up (/a, /b, /c, …), 1 changed, 0 removed since, of 10 live files',
    );
  });
});
