// The operator restarted mid-scenario (kill -9 while backups, replication and a restore are in flight):
// afterwards every status moves on — repositories report later probes (a failure too), policies later
// successes, Backups complete and replicate, the restore finishes with its RTO. SPEC R-SCHED, R-BACKUP,
// R-REPL, R-RESTORE; issue 8 finding 3 (timestamps from the informer's list and its watch differ in type).
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../src/api/kinds.ts';
import type { AzuriteServer } from '../harness/azurite.ts';
import { WaitFailed, waitUntil } from '../harness/process.ts';
import { secretObject, startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('restart');
let env: TidemarkEnvironment;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true });
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 12; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(2000));
  const azurite = env.azurite as AzuriteServer;
  await env.apply([
    secretObject(env.namespace, 'azure-credentials-wrong', {
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString.replace(
        /AccountKey=[^;]+/,
        `AccountKey=${Buffer.alloc(64, 7).toString('base64')}`,
      ),
    }),
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'restored', namespace: env.namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
    volumePolicy(
      env.namespace,
      'restart',
      { full: { every: '15s', anchor: '2026-01-01T00:00:00Z' } },
      {
        replicas: [{ repository: 'replica', region: 'westeurope' }],
        objectives: { rpo: '2m' },
        restore: { targets: [{ volume: { claimNames: ['restored'] } }] },
      },
    ),
  ]);
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const ready = (r: BackupRepository) => r.status?.conditions?.find((c) => c.type === 'Ready');
const replicated = (b: Backup) =>
  b.status?.phase === 'Succeeded' &&
  (b.status.repositories ?? []).length === 2 &&
  (b.status.repositories ?? []).every((r) => r.state === 'Succeeded');

async function setReplicaCredentials(secret: string): Promise<void> {
  await env.cluster.kubectl([
    'patch',
    'backuprepository',
    'replica',
    '-n',
    env.namespace,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { credentialsSecret: { name: secret } } }),
  ]);
}

describe('operator restart mid-scenario', () => {
  test('after a kill -9, repositories, policies, Backups and restores all move on', async () => {
    let operator = env.startOperator('operator-1');
    await waitUntil(
      'both repositories Ready and a replicated backup',
      async () => {
        const repos = await Promise.all(
          ['primary', 'replica'].map((n) => env.read<BackupRepository>('backuprepositories', n)),
        );
        return repos.every((r) => ready(r)?.status === 'True') && (await env.backups()).some(replicated);
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const first = (await env.backups()).find(replicated) as Backup;

    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'RestoreRequest',
        metadata: { name: 'across-restart', namespace: env.namespace },
        spec: { from: { backupName: first.metadata.name }, target: { volume: { claimName: 'restored' } } },
      },
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    await operator.stop('SIGKILL');
    const restartedAt = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    operator = env.startOperator('operator-2');

    // The restore that straddled the restart finishes, with the backup's files and its RTO.
    await waitUntil(
      'the restore succeeded',
      async () => {
        const request = await env.read<RestoreRequest>('restorerequests', 'across-restart');
        if (request.status?.phase === 'Failed') throw new WaitFailed(`restore failed: ${request.status.error}`);
        return request.status?.phase === 'Succeeded';
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    const restore = await env.read<RestoreRequest>('restorerequests', 'across-restart');
    assert.equal(typeof restore.status?.rtoSeconds, 'number');
    assert.equal((await readdir(join(env.kubelet.claimDir(env.namespace, 'restored'), 'files'))).length, 12);

    // Scheduled runs after the restart succeed and replicate; the policy's status follows them.
    await waitUntil(
      'a run scheduled after the restart replicated, and the policy reports it',
      async () => {
        const later = (await env.backups()).filter(
          (b) => Date.parse(b.spec.scheduledTime ?? '') > restartedAt && replicated(b),
        );
        const policy = await env.read<BackupPolicy>('backuppolicies', 'restart');
        const success = Date.parse(policy.status?.sources?.[0]?.lastSuccessTime ?? '');
        return later.length > 0 && success > restartedAt;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    const policy = await env.read<BackupPolicy>('backuppolicies', 'restart');
    assert.equal(policy.status?.conditions?.find((c) => c.type === 'RPOMet')?.status, 'True');
    assert.ok(Date.parse(policy.status?.nextRunTime ?? '') > restartedAt, 'the next run lies after the restart');

    // A probe after the restart that fails turns the repository not Ready, and a later one Ready again.
    const before = Date.parse(
      (await env.read<BackupRepository>('backuprepositories', 'replica')).status?.lastCheckTime ?? '',
    );
    await setReplicaCredentials('azure-credentials-wrong');
    await waitUntil(
      'the failed probe is reported',
      async () => {
        const replica = await env.read<BackupRepository>('backuprepositories', 'replica');
        return ready(replica)?.status === 'False' && Date.parse(replica.status?.lastCheckTime ?? '') > before;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const failedAt = Date.parse(
      (await env.read<BackupRepository>('backuprepositories', 'replica')).status?.lastCheckTime ?? '',
    );
    await setReplicaCredentials('azure-credentials');
    await waitUntil(
      'the recovered probe is reported',
      async () => {
        const replica = await env.read<BackupRepository>('backuprepositories', 'replica');
        return ready(replica)?.status === 'True' && Date.parse(replica.status?.lastCheckTime ?? '') > failedAt;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    await operator.stop();
  });
});
