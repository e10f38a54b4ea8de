import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { BackupRepository } from '../../api/kinds.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { decideRepository, PROBE_INTERVAL_MS, probesOf } from './decide.ts';

const now = new Date('2026-11-23T12:00:00Z');
const settings = { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' };
const repository = (status?: BackupRepository['status']): BackupRepository => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'BackupRepository',
  metadata: { name: 'primary', namespace: 'tenants', uid: 'u1', generation: 1 },
  spec: {
    provider: 's3',
    s3: { bucket: 'b' },
    region: 'eu-west-1',
    credentialsSecret: { name: 'c' },
    encryptionKeySecret: { name: 'k', key: 'passphrase' },
  },
  ...(status ? { status } : {}),
});
const ended = (type: 'Complete' | 'Failed'): k8s.V1Job => ({
  metadata: { name: 'probe' },
  status: { completionTime: new Date(now.getTime() - 1000), conditions: [{ type, status: 'True' }] },
});

test('a new repository gets a probe Job that reaches it with its credentials only through Secrets', () => {
  const decision = decideRepository({ repository: repository(), probes: [], settings, now });
  const container = decision.createJob?.spec?.template.spec?.containers[0];
  assert.deepEqual(container?.args, ['agent', 'probe']);
  assert.ok(container?.env?.some((e) => e.name === 'TIDEMARK_REPO_KEY' && e.valueFrom?.secretKeyRef?.name === 'k'));
  assert.deepEqual(container?.envFrom, [{ secretRef: { name: 'c' } }]);
  assert.equal(decision.createJob?.metadata?.ownerReferences?.[0]?.kind, 'BackupRepository');
});

test('a successful probe makes the repository Ready and initialised, with its size', () => {
  const decision = decideRepository({
    repository: repository(),
    probes: [
      { job: ended('Complete'), result: { ok: true, repositoryId: 'abc', initialized: true, storedBytes: 2048 } },
    ],
    settings,
    now,
  });
  assert.equal(decision.status.initialized, true);
  assert.equal(decision.status.size, '2.0 KiB');
  assert.equal(decision.status.conditions?.[0]?.status, 'True');
  assert.equal(decision.createJob, undefined);
  assert.deepEqual(
    decision.events.map((e) => e.reason),
    ['RepositoryInitialized'],
  );
  // The check time is when the probe ended (a second ago), and the next probe is due an interval after it.
  assert.equal(decision.status.lastCheckTime, new Date(now.getTime() - 1000).toISOString());
  assert.equal(decision.requeueAfterMs, PROBE_INTERVAL_MS - 1000);
});

test('a failed probe says why, by the agent error code', () => {
  const decision = decideRepository({
    repository: repository(),
    probes: [
      { job: ended('Failed'), result: { ok: false, error: { code: 'WrongKey', message: 'wrong repository key' } } },
    ],
    settings,
    now,
  });
  assert.equal(decision.status.conditions?.[0]?.reason, 'WrongKey');
  assert.equal(decision.status.conditions?.[0]?.status, 'False');
  assert.equal(decision.events[0]?.type, 'Warning');
});

test('a recent check waits for the interval; an old one probes again', () => {
  const fresh = repository({
    lastCheckTime: new Date(now.getTime() - 60_000).toISOString(),
    observedGeneration: 1,
    initialized: true,
  });
  assert.equal(decideRepository({ repository: fresh, probes: [], settings, now }).createJob, undefined);
  const stale = repository({
    lastCheckTime: new Date(now.getTime() - PROBE_INTERVAL_MS).toISOString(),
    observedGeneration: 1,
    initialized: true,
  });
  assert.ok(decideRepository({ repository: stale, probes: [], settings, now }).createJob);
});

test('a probe that ended after the last check is recorded even when the Job came from a list (Date) and the check from a watch (string)', () => {
  const before = new Date(now.getTime() - 120_000);
  const old: k8s.V1Job = {
    metadata: { name: 'probe-old', creationTimestamp: new Date(before.getTime() - 5000) },
    status: { completionTime: before, conditions: [{ type: 'Complete', status: 'True' }] },
  };
  const fresh = {
    metadata: { name: 'probe-new', creationTimestamp: new Date(now.getTime() - 10_000).toISOString() },
    status: {
      completionTime: new Date(now.getTime() - 5000).toISOString(),
      conditions: [{ type: 'Failed', status: 'True' }],
    },
  } as unknown as k8s.V1Job;
  const decision = decideRepository({
    repository: repository({
      initialized: true,
      lastCheckTime: before.toISOString(),
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Reachable', message: 'ok', lastTransitionTime: before.toISOString() },
      ],
    }),
    probes: [
      { job: fresh, result: { ok: false, error: { code: 'AccessDenied', message: 'access denied' } } },
      { job: old, result: { ok: true } },
    ],
    settings,
    now,
  });
  assert.equal(decision.status.lastCheckTime, new Date(now.getTime() - 5000).toISOString());
  assert.equal(decision.status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
});

test('a probe Job the API server refuses makes the repository not Ready, naming why, once', () => {
  const first = decideRepository({ repository: repository(), probes: [], settings, now });
  const name = first.createJob?.metadata?.name ?? '';
  const refused = decideRepository({
    repository: repository(),
    probes: [],
    rejected: new Map([[name, 'the API server refused it (403): forbidden']]),
    settings,
    now,
  });
  const ready = refused.status.conditions?.find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'False');
  assert.equal(ready?.reason, 'ProbeRejected');
  assert.match(ready?.message ?? '', /forbidden/);
  assert.equal(refused.createJob, undefined);
  assert.equal(refused.events.length, 1);
  const again = decideRepository({
    repository: repository(refused.status),
    probes: [],
    rejected: new Map([[name, 'the API server refused it (403): forbidden']]),
    settings,
    now,
  });
  assert.equal(again.events.length, 0, 'the same refusal is not announced twice');
});

test('a catalog sync the repository owns is not taken for a probe: its end changes neither size nor Ready', () => {
  const job = (name: string, task: string, endedMsAgo: number, created: number): k8s.V1Job => ({
    metadata: { name, labels: { 'tidemark.dev/task': task }, creationTimestamp: new Date(created) },
    status: {
      completionTime: new Date(now.getTime() - endedMsAgo),
      conditions: [{ type: task === 'probe' ? 'Complete' : 'Failed', status: 'True' }],
    },
  });
  const probe = { job: job('primary-probe', 'probe', 60_000, 1), result: { ok: true, storedBytes: 4096 } };
  const catalog = {
    job: job('primary-catalog', 'catalog', 1000, 2),
    result: { ok: false as const, error: { code: 'Transient' as const, message: 'listing failed' } },
  };
  const decision = decideRepository({
    repository: repository(),
    probes: probesOf([catalog, probe] as JobObserved[]),
    settings,
    now,
  });
  assert.equal(decision.status.size, '4.0 KiB');
  assert.equal(decision.status.conditions?.[0]?.status, 'True');
  assert.equal(decision.status.lastCheckTime, new Date(now.getTime() - 60_000).toISOString());
});
