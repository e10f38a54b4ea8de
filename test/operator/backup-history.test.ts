// An operator starting over a long history (issue 14, "the operator with history"): the Backup
// controller reconciles every finished Backup once at start, and it must do so from its informer cache,
// without a request per Backup (200,000 Backups were 200,000 GETs, tens of minutes of API server time
// before a due run could be noticed). Through the real control plane, counting the API server's own
// apiserver_request_total.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../src/api/kinds.ts';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, startProcess, waitUntil } from '../harness/process.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('backup-history');
const NAMESPACE = 'history';
const BACKUPS = 12;
let cluster: Cluster;
let operator: ManagedProcess | undefined;

const group = { group: 'tidemark.dev', version: 'v1alpha1', namespace: NAMESPACE, plural: 'backups' };

/** A finished run, as the Backup controller leaves it, with per-table counts the cache leaves out. */
async function createFinished(api: k8s.CustomObjectsApi, i: number): Promise<void> {
  const name = `shop-full-${String(i).padStart(2, '0')}`;
  const scheduledTime = new Date(Date.UTC(2026, 10, 1 + i, 2)).toISOString();
  const created = (await api.createNamespacedCustomObject({
    ...group,
    body: {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name, labels: { 'tidemark.dev/policy': 'retired', 'tidemark.dev/source': 'shop' } },
      spec: { policy: 'retired', source: 'shop', type: 'full', scheduledTime },
    },
  })) as Backup;
  const completionTime = new Date(Date.parse(scheduledTime) + 60_000).toISOString();
  await api.replaceNamespacedCustomObjectStatus({
    ...group,
    name,
    body: {
      ...created,
      status: {
        phase: 'Succeeded',
        conditions: [
          {
            type: 'Succeeded',
            status: 'True',
            reason: 'Completed',
            message: 'snapshot in primary',
            observedGeneration: 1,
            lastTransitionTime: completionTime,
          },
        ],
        startTime: scheduledTime,
        completionTime,
        snapshotId: 'a'.repeat(64),
        logicalBytes: 1000,
        uploadedBytes: 100,
        size: '1000 B',
        objects: [{ name: 'public.orders', records: 10 }],
        repositories: [{ repository: 'primary', role: 'primary', state: 'Succeeded', snapshotId: 'a'.repeat(64) }],
      },
    },
  });
}

/** GETs of single Backups the API server has served so far (its own counter, any client). */
async function backupGets(): Promise<number> {
  const metrics = await cluster.kubectl(['get', '--raw', '/metrics']);
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (/resource="backups"/.test(line) && /verb="GET"/.test(line) && /subresource=""/.test(line))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function reconciles(port: number, controller: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = body
    .split('\n')
    .find((l) => l.startsWith(`tidemark_controller_reconciles_total{controller="${controller}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

before(async () => {
  cluster = await startCluster(join(workDir.path, 'cluster'));
  await cluster.kubectl(['create', 'namespace', NAMESPACE]);
  const api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  for (let i = 0; i < BACKUPS; i++) await createFinished(api, i);
});

after(async () => {
  await operator?.stop();
  await cluster?.stop();
  workDir.remove();
});

describe('an operator starting over a Backup history', () => {
  test('reconciles every finished Backup from its cache: no GET per Backup, their status untouched', async () => {
    const api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const before = (await api.listNamespacedCustomObject(group)) as { items: Backup[] };
    const getsBefore = await backupGets();
    const metricsPort = await freePort();
    operator = startProcess(
      'operator',
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        join(repoRoot, 'src/cli/main.ts'),
        'operator',
        '--agent-image',
        'ghcr.io/tidemark-dev/tidemark:test',
        '--metrics-port',
        String(metricsPort),
        '--health-port',
        String(await freePort()),
      ],
      {
        logFile: join(workDir.path, 'operator.log'),
        env: { PATH: process.env.PATH ?? '', KUBECONFIG: cluster.kubeconfigPath },
      },
    );
    await waitUntil('every Backup reconciled', async () => (await reconciles(metricsPort, 'backup')) >= BACKUPS, {
      timeoutMs: 90_000,
      process: operator,
    });
    assert.equal((await backupGets()) - getsBefore, 0, 'GETs of single Backups while the operator started');
    const afterStart = (await api.listNamespacedCustomObject(group)) as { items: Backup[] };
    assert.deepEqual(
      afterStart.items.map((b) => [b.metadata.name, b.metadata.resourceVersion, b.status?.objects]),
      before.items.map((b) => [b.metadata.name, b.metadata.resourceVersion, b.status?.objects]),
      'a finished Backup is not written to, and keeps its per-table counts',
    );
  });
});
