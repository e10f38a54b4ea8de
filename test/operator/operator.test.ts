// The operator end to end on the real control plane: a policy with a PostgreSQL tenant database and a
// volume, primary on the S3 server, replica on Azurite, an every-minute incremental and an hourly
// full: scheduled runs happen as agent Jobs, replicate, and show in `kubectl get backups`.
// SPEC R-SCHED, R-BACKUP, R-REPL.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../src/api/kinds.ts';
import { runOperator } from '../../src/operator/operator.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import type { AzuriteServer } from '../harness/azurite.ts';
import type { PostgresServer } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { AGENT_IMAGE, PASSPHRASE, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const namespace = 'tenants';
const workDir = makeWorkDir('operator');
let env: TidemarkEnvironment;
let cluster: TidemarkEnvironment['cluster'];
let azurite: AzuriteServer;
const stopOperator = new AbortController();
let operator: Promise<void>;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true, postgres: true });
  cluster = env.cluster;
  azurite = env.azurite as AzuriteServer;
  const postgres = env.postgres as PostgresServer;
  await postgres.psql('create database acme');
  await postgres.psql(
    'create table invoices (id serial primary key, total int); insert into invoices (total) select g from generate_series(1, 5000) g;',
    'acme',
  );
  const documents = join(env.kubelet.claimDir(namespace, 'documents'), 'acme');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 20; i++) await writeFile(join(documents, `contract-${i}.txt`), `contract ${i}\n`.repeat(1000));
  await env.apply([
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'tenants', namespace },
      spec: {
        sources: [
          { name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } },
          { name: 'documents', volume: { claimName: 'documents' } },
        ],
        schedule: { full: { every: '1h' }, incremental: { cron: '* * * * *' } },
        repository: 'primary',
        replicas: [{ repository: 'replica', region: 'westeurope' }],
        objectives: { rpo: '10m' },
        allowedRegions: ['us-east-1', 'westeurope'],
      },
    },
  ]);
  operator = runOperator(
    cluster.kubeConfig,
    { settings: { image: AGENT_IMAGE, serviceAccountName: 'tidemark-agent' } },
    stopOperator.signal,
  );
});

after(async () => {
  stopOperator.abort();
  await operator?.catch(() => undefined);
  await env?.stop();
  workDir.remove();
});

const replicated = (b: Backup) =>
  b.status?.phase === 'Succeeded' && (b.status.repositories ?? []).every((r) => r.state === 'Succeeded');

describe('operator end to end', () => {
  test('repositories are probed: the existing one is Ready, the empty one is initialised', async () => {
    await waitUntil(
      'both repositories Ready',
      async () => {
        const out = await cluster.kubectl([
          'get',
          'backuprepositories',
          '-n',
          namespace,
          '-o',
          'jsonpath={range .items[*]}{.metadata.name}={.status.initialized},{end}',
        ]);
        return out.includes('primary=true') && out.includes('replica=true');
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const table = await cluster.kubectl(['get', 'backuprepositories', '-n', namespace]);
    assert.match(table, /replica\s+azureBlob\s+westeurope\s+True\s+\d/);
    const events = await cluster.kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'reason=RepositoryInitialized',
      '-o',
      'name',
    ]);
    assert.ok(events.trim().length > 0, 'an Event says the replica was initialised');
  });

  test('scheduled runs of both sources back up, replicate, and show in kubectl get backups', async () => {
    await waitUntil(
      'two replicated scheduled runs per source',
      async () => {
        const all = await env.backups();
        const failed = all.find((b) => b.status?.phase === 'Failed');
        if (failed) throw new Error(`Backup ${failed.metadata.name} failed: ${failed.status?.error}`);
        return ['acme-db', 'documents'].every(
          (source) => all.filter((b) => b.spec.source === source && replicated(b)).length >= 2,
        );
      },
      { timeoutMs: 240_000, intervalMs: 2000 },
    );
    const all = await env.backups();
    for (const b of all.filter(replicated)) {
      assert.ok(b.spec.scheduledTime, 'created by the schedule');
      assert.ok(b.metadata.name?.startsWith(`tenants-${b.spec.source}-`), b.metadata.name);
      assert.ok((b.status?.logicalBytes ?? 0) > 0);
      assert.equal(b.status?.repositories?.length, 2);
    }
    const db = all.find((b) => b.spec.source === 'acme-db' && replicated(b));
    assert.deepEqual(db?.status?.objects, [{ name: 'public.invoices', records: 5000 }]);
    const volume = all.find((b) => b.spec.source === 'documents' && replicated(b));
    assert.deepEqual(volume?.status?.objects, [{ name: 'acme', records: 20 }]);
    assert.ok(all.some((b) => b.spec.type === 'full') && all.some((b) => b.spec.type === 'incremental'));

    const table = await cluster.kubectl(['get', 'backups', '-n', namespace]);
    assert.match(table, /tenants-acme-db-\S+\s+tenants\s+acme-db\s+(full|incremental)\s+Succeeded\s+\d/);

    const replica = await Repository.open(
      openStorage('azblob://replica/tenants', { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }),
      Buffer.from(PASSPHRASE),
    );
    const copied = new Set((await replica.snapshots()).map((s) => s.id));
    for (const b of all.filter(replicated))
      assert.ok(copied.has((b.status?.snapshotId ?? '') as never), `snapshot of ${b.metadata.name} is in the replica`);
    // The probe initialised the replica with keys of its own; the first replicate gave it the primary's
    // chunk identity (so copies read only what changed), never the primary's encryption key.
    const primary = await Repository.open(openStorage(env.primaryUrl, env.s3Env), Buffer.from(PASSPHRASE));
    assert.ok(replica.sharesChunkIdentityWith(primary), 'the replica shares the primary’s chunk identity');
    assert.ok(!replica.keys.encryption.equals(primary.keys.encryption), 'but not its encryption key');
  });

  test('the policy reports per-source status, next run and RPO', async () => {
    const api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const policy = (await api.getNamespacedCustomObject({
      group: 'tidemark.dev',
      version: 'v1alpha1',
      plural: 'backuppolicies',
      namespace,
      name: 'tenants',
    })) as {
      status: {
        conditions: { type: string; status: string }[];
        sources: { name: string; lastSuccessTime?: string; nextRunTime?: string }[];
      };
    };
    assert.equal(policy.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal(policy.status.conditions.find((c) => c.type === 'RPOMet')?.status, 'True');
    for (const source of policy.status.sources) {
      assert.ok(source.lastSuccessTime, `${source.name} has a last success`);
      assert.ok(source.nextRunTime && Date.parse(source.nextRunTime) > Date.now() - 60_000);
    }
  });
});
