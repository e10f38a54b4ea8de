// What a Backup says is what happened (issue #8, findings 1, 4, 5, 6, 8), on the real control plane:
// a re-created Backup runs its own Job; long names fit; a refused Job fails the run at once and blocks
// nothing; a pod that cannot start fails the run naming the Secret and key; a failed replica copy is
// retried until it succeeds; a Backup applied before its policy waits for it. SPEC R-BACKUP, R-REPL.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../src/api/kinds.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import type { AzuriteServer } from '../harness/azurite.ts';
import { waitUntil } from '../harness/process.ts';
import {
  PASSPHRASE,
  secretObject,
  startTidemarkEnvironment,
  type TidemarkEnvironment,
  volumePolicy,
} from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('backup-truth');
let env: TidemarkEnvironment;
let ns: string;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true });
  ns = env.namespace;
  const documents = join(env.kubelet.claimDir(ns, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(2000));
  // TIDEMARK_OPERATOR_ARGS='' runs the operator without the flag (to reproduce on code that lacks it).
  const args = (process.env.TIDEMARK_OPERATOR_ARGS ?? '--pod-start-timeout 5 --storage-retry-budget 10s')
    .split(' ')
    .filter(Boolean);
  env.startOperator('operator', args);
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const ofPolicy = async (policy: string) => (await env.backups()).filter((b) => b.spec.policy === policy);
const finished = (b: Backup | undefined) => b?.status?.phase === 'Succeeded' || b?.status?.phase === 'Failed';
const reasonOf = (b: Backup | undefined) => b?.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason;

async function backup(name: string): Promise<Backup | undefined> {
  return (await env.backups()).find((b) => b.metadata.name === name);
}

async function eventsOf(uid: string, reason: string): Promise<string[]> {
  const out = await env.cluster.kubectl([
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.uid=${uid},reason=${reason}`,
    '-o',
    'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
  ]);
  return out.split('\n').filter(Boolean);
}

async function snapshotIds(): Promise<Set<string>> {
  const repository = await Repository.open(openStorage(env.primaryUrl, env.s3Env), Buffer.from(PASSPHRASE));
  return new Set((await repository.snapshots()).map((s) => s.id as string));
}

describe('finding 1: a result comes only from a Job created for that Backup object', () => {
  test('deleting a scheduled Backup makes a fresh run of its slot, with its own Job and a snapshot the repository holds', async () => {
    await env.apply([volumePolicy(ns, 'phantom', { full: { every: '1h' } })]);
    await waitUntil('the first run succeeded', async () => (await ofPolicy('phantom')).some(finished), {
      timeoutMs: 120_000,
    });
    const [first] = await ofPolicy('phantom');
    assert.equal(first?.status?.phase, 'Succeeded', first?.status?.error);
    const name = first?.metadata.name ?? '';
    const oldUid = first?.metadata.uid ?? '';

    await env.cluster.kubectl(['delete', 'backup', name, '-n', ns, '--wait=false']);
    await waitUntil(
      'the policy re-created the Backup and it finished',
      async () => {
        const again = await backup(name);
        return again !== undefined && again.metadata.uid !== oldUid && finished(again);
      },
      { timeoutMs: 180_000 },
    );
    const again = (await backup(name)) as Backup;
    assert.equal(again.status?.phase, 'Succeeded', again.status?.error);
    assert.ok(again.status?.startTime, 'a real run has a start time');
    assert.ok(
      (again.status?.startTime ?? '') >= (first?.status?.completionTime ?? ''),
      'it started after the first run ended',
    );
    assert.notEqual(again.status?.jobName, first?.status?.jobName, 'its own Job');
    assert.notEqual(again.status?.snapshotId, first?.status?.snapshotId, 'its own snapshot');
    assert.ok((await snapshotIds()).has(again.status?.snapshotId ?? ''), 'the repository holds its snapshot');
    const started = await eventsOf(again.metadata.uid ?? '', 'BackupStarted');
    const succeeded = await eventsOf(again.metadata.uid ?? '', 'BackupSucceeded');
    assert.equal(started.length, 1, 'one run started for the new object');
    assert.equal(succeeded.length, 1, 'one success for the new object');
    assert.match(succeeded[0] ?? '', new RegExp(`snapshot ${again.status?.snapshotId?.slice(0, 12)}`));
    await env.cluster.kubectl(['delete', 'backuppolicy', 'phantom', '-n', ns]);
  });
});

describe('finding 4: names that fit, and Job refusals that fail at once', () => {
  test('a policy with a long name (label values over 63 characters) backs up', async () => {
    const long = `tenant-${'x'.repeat(60)}-documents-archive`;
    await env.apply([volumePolicy(ns, long, { full: { every: '1h' } })]);
    await waitUntil('the long-named policy ran', async () => (await ofPolicy(long)).some(finished), {
      timeoutMs: 120_000,
    });
    const [run] = await ofPolicy(long);
    assert.equal(run?.status?.phase, 'Succeeded', run?.status?.error);
    const batch = env.cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
    const job = await batch.readNamespacedJob({ name: run?.status?.jobName ?? '', namespace: ns });
    for (const value of Object.values(job.metadata?.labels ?? {})) assert.ok(value.length <= 63, value);
    assert.equal(job.spec?.activeDeadlineSeconds, 6 * 3600, 'every agent Job has a deadline by default');
    await env.cluster.kubectl(['delete', 'backuppolicy', long, '-n', ns]);
  });

  test('a Job the API server refuses (422) fails the Backup at once with its message, and later runs are not blocked', async () => {
    // Accepted by the policy's schema, refused by the API server: a CPU request above its limit.
    const invalid = { resources: { requests: { cpu: '2' }, limits: { cpu: '1' } } };
    await env.apply([volumePolicy(ns, 'refused', { full: { every: '20s' } }, { jobTemplate: invalid })]);
    await waitUntil('a run was refused', async () => (await ofPolicy('refused')).some(finished), {
      timeoutMs: 60_000,
    });
    const refused = (await ofPolicy('refused')).find(finished);
    assert.equal(refused?.status?.phase, 'Failed');
    assert.equal(reasonOf(refused), 'JobRejected');
    assert.match(refused?.status?.error ?? '', /\(422\).*must be less than or equal to cpu limit/);

    await env.cluster.kubectl([
      'patch',
      'backuppolicy',
      'refused',
      '-n',
      ns,
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/spec/jobTemplate"}]',
    ]);
    await waitUntil(
      'a later run succeeded',
      async () => (await ofPolicy('refused')).some((b) => b.status?.phase === 'Succeeded'),
      { timeoutMs: 120_000 },
    );
    await env.cluster.kubectl(['delete', 'backuppolicy', 'refused', '-n', ns]);
  });
});

describe('finding 5: a pod that cannot start', () => {
  test('a missing connection Secret fails the Backup with PodCannotStart naming the Secret and key, and removes the Job', async () => {
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'BackupPolicy',
        metadata: { name: 'nosecret', namespace: ns },
        spec: {
          sources: [{ name: 'db', postgres: { connectionSecret: { name: 'absent-db' }, databases: ['app'] } }],
          schedule: { full: { every: '1h' } },
          repository: 'primary',
        },
      },
    ]);
    await waitUntil('the run ended', async () => (await ofPolicy('nosecret')).some(finished), {
      timeoutMs: 90_000,
    });
    const [run] = await ofPolicy('nosecret');
    assert.equal(run?.status?.phase, 'Failed');
    assert.equal(reasonOf(run), 'PodCannotStart', run?.status?.error);
    assert.match(run?.status?.error ?? '', /CreateContainerConfigError/);
    assert.match(run?.status?.error ?? '', /secret "absent-db"/);
    assert.match(run?.status?.error ?? '', /key "host"|key "port"|key "username"|key "password"/);
    const batch = env.cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
    await waitUntil(
      'its Job is deleted',
      async () => {
        const jobs = await batch.listNamespacedJob({ namespace: ns });
        return !jobs.items.some((j) => j.metadata?.name === run?.status?.jobName);
      },
      { timeoutMs: 30_000 },
    );
    await env.cluster.kubectl(['delete', 'backuppolicy', 'nosecret', '-n', ns]);
  });
});

describe('finding 8: a Backup applied before its policy', () => {
  test('waits Pending with PolicyNotFound, then runs when the policy appears', async () => {
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'Backup',
        metadata: { name: 'early', namespace: ns },
        spec: { policy: 'later', source: 'documents', type: 'full' },
      },
    ]);
    await waitUntil('the Backup waits', async () => reasonOf(await backup('early')) === 'PolicyNotFound', {
      timeoutMs: 30_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const waiting = await backup('early');
    assert.equal(waiting?.status?.phase, 'Pending');
    assert.match(waiting?.status?.conditions?.find((c) => c.type === 'Succeeded')?.message ?? '', /later/);

    await env.apply([volumePolicy(ns, 'later', { full: { every: '1h' }, suspend: true })]);
    await waitUntil('the Backup ran', async () => finished(await backup('early')), { timeoutMs: 120_000 });
    const done = await backup('early');
    assert.equal(done?.status?.phase, 'Succeeded', done?.status?.error);
    await env.cluster.kubectl(['delete', 'backuppolicy', 'later', '-n', ns]);
  });
});

describe('finding 6: a failed replica copy is retried', () => {
  test('a replica unreachable for longer than one attempt ends Succeeded once it is back', async () => {
    const azurite = env.azurite as AzuriteServer;
    const custom = env.cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    await waitUntil(
      'the replica repository is initialised',
      async () => {
        const replica = (await custom.getNamespacedCustomObject({
          group: 'tidemark.dev',
          version: 'v1alpha1',
          plural: 'backuprepositories',
          namespace: ns,
          name: 'replica',
        })) as { status?: { initialized?: boolean } };
        return replica.status?.initialized === true;
      },
      { timeoutMs: 90_000 },
    );
    // Unreachable: the credentials point at a closed port (Azurite keeps its data in memory, so it stays up).
    const unreachable = azurite.connectionString.replace(
      /BlobEndpoint=http:\/\/127\.0\.0\.1:\d+/,
      'BlobEndpoint=http://127.0.0.1:9',
    );
    await env.apply([secretObject(ns, 'azure-credentials', { AZURE_STORAGE_CONNECTION_STRING: unreachable })]);
    await env.apply([
      volumePolicy(
        ns,
        'replicated',
        { full: { every: '1h' } },
        { replicas: [{ repository: 'replica', region: 'westeurope' }] },
      ),
    ]);
    const replicaState = async () =>
      (await ofPolicy('replicated'))[0]?.status?.repositories?.find((r) => r.role === 'replica');
    await waitUntil('a copy attempt failed', async () => (await replicaState())?.state === 'Failed', {
      timeoutMs: 180_000,
    });
    const failed = await replicaState();
    assert.ok(failed?.nextRetryTime, 'a retry is scheduled');
    assert.equal(failed?.attempts, 1);
    const [run] = await ofPolicy('replicated');
    assert.match((await eventsOf(run?.metadata.uid ?? '', 'ReplicationFailed'))[0] ?? '', /attempt 1/);

    await env.apply([
      secretObject(ns, 'azure-credentials', { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }),
    ]);
    await waitUntil(
      'the copy succeeded on a later attempt',
      async () => (await replicaState())?.state === 'Succeeded',
      {
        timeoutMs: 240_000,
      },
    );
    assert.ok(((await replicaState())?.attempts ?? 0) >= 2);
    await env.cluster.kubectl(['delete', 'backuppolicy', 'replicated', '-n', ns]);
  });
});
