// The operator's HTTP endpoints and metrics through the real control plane (issue 12): the probes
// answer (liveness whatever the API server does, readiness once the caches synced or as a standby),
// /metrics carries every source's series from start-up, says what the policy status says after a
// backup and a restore, and says the same after the operator is killed and started again.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupPolicy, RestoreRequest } from '../../src/api/kinds.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, WaitFailed, waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('metrics');
let env: TidemarkEnvironment;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(500));
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

interface Ports {
  metrics: number;
  health: number;
}

async function ports(): Promise<Ports> {
  return { metrics: await freePort(), health: await freePort() };
}

function operatorArgs(p: Ports, extra: string[] = []): string[] {
  return ['--metrics-port', String(p.metrics), '--health-port', String(p.health), ...extra];
}

const leaderElection = ['--leader-elect', '--lease-namespace', 'tenants', '--lease-duration', '4'];

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

/** The exposition's samples by `name{label="value",...}`, labels sorted. */
async function scrape(p: Ports): Promise<Map<string, number>> {
  const { status, body } = await get(p.metrics, '/metrics');
  assert.equal(status, 200);
  const samples = new Map<string, number>();
  for (const line of body.split('\n')) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`);
    samples.set(series(match[1] as string, labels), Number(match[3]));
  }
  return samples;
}

function series(name: string, labels: string[] | Record<string, string>): string {
  const list = Array.isArray(labels) ? labels : Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return list.length ? `${name}{${[...list].sort().join(',')}}` : name;
}

const source = { namespace: 'tenants', policy: 'docs', source: 'documents' };
const at = (name: string, labels: Record<string, string> = source) => series(name, labels);

async function leading(p: Ports, operator: ManagedProcess): Promise<Map<string, number>> {
  let samples = new Map<string, number>();
  await waitUntil(
    `${operator.name} leads and reports the policy`,
    async () => {
      samples = await scrape(p);
      return samples.get('tidemark_leader') === 1 && samples.has(at('tidemark_source_never_succeeded'));
    },
    { timeoutMs: 60_000, intervalMs: 500, process: operator },
  );
  return samples;
}

describe('probes', () => {
  test('with the API server not answering, /healthz says the process is alive and /readyz 503 (caches not synced)', async () => {
    const silent = await silentApiServer('silent-kubeconfig');
    const p = await ports();
    const operator = env.startOperator('operator-silent-api', operatorArgs(p), {
      env: { KUBECONFIG: silent.kubeconfig },
    });
    try {
      await waitUntil('the probe endpoint answers', async () => (await get(p.health, '/healthz')).status > 0, {
        timeoutMs: 30_000,
        process: operator,
      });
      // Longer than the informers' first list would take against a real API server.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      assert.deepEqual(await get(p.health, '/healthz'), { status: 200, body: 'ok\n' });
      const ready = await get(p.health, '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /not synced/);
      assert.equal((await get(p.health, '/nothing')).status, 404);
      const metrics = await scrape(p);
      assert.equal(metrics.get('tidemark_leader'), 1, 'without leader election it is the one that acts');
      assert.equal(metrics.get(at('tidemark_source_never_succeeded')), undefined, 'no caches, no object metrics');
    } finally {
      await operator.stop('SIGKILL');
      silent.close();
    }
  });

  // A first list of 200,000 Backups takes minutes: SIGTERM (a rollout, a drained node) must not wait for it,
  // nor, once synced, for anything the operator leaves pending (requeue timers, watches, connections).
  for (const situation of ['while the caches are still syncing', 'once synced and running'] as const)
    test(`SIGTERM ${situation}: the operator exits, well within the pod grace period`, async () => {
      const silent = situation === 'once synced and running' ? undefined : await silentApiServer('syncing-kubeconfig');
      const p = await ports();
      const operator = env.startOperator(
        `operator-sigterm-${silent ? 'syncing' : 'synced'}`,
        operatorArgs(p),
        silent ? { env: { KUBECONFIG: silent.kubeconfig } } : {},
      );
      try {
        const ready = silent ? 503 : 200;
        await waitUntil(
          `/readyz says ${ready}`,
          async () => (await get(p.health, '/readyz').catch(() => undefined))?.status === ready,
          {
            timeoutMs: 60_000,
            process: operator,
          },
        );
        await sleep(1000);
        process.kill(operator.child.pid as number, 'SIGTERM');
        // Kubernetes sends SIGKILL 30 s after SIGTERM by default; the harness's own stop() waits 10 s.
        const exited = await Promise.race([operator.exited.then((code) => ({ code })), sleep(10_000, 'still running')]);
        assert.deepEqual(exited, { code: 0 }, `the operator exits on SIGTERM (log: ${operator.logFile})`);
      } finally {
        await operator.stop('SIGKILL');
        silent?.close();
      }
    });
});

/** An "API server" that accepts connections and never answers: the informers cannot sync. */
async function silentApiServer(kubeconfigName: string): Promise<{ kubeconfig: string; close(): void }> {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  const kubeconfig = join(workDir.path, kubeconfigName);
  writeFileSync(
    kubeconfig,
    readFileSync(env.cluster.kubeconfigPath, 'utf8').replace(/server: .*/, `server: https://127.0.0.1:${port}`),
  );
  return {
    kubeconfig,
    close() {
      for (const socket of sockets) socket.destroy();
      silent.close();
    },
  };
}

describe('metrics', () => {
  test('per-source series from start-up, equal to the policy status after a backup and a restore, and after kill -9 and a restart', async () => {
    await env.apply([
      ...['documents', 'scratch', 'restored'].map((name) => ({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name, namespace: env.namespace },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      })),
      // Runs only when asked (a Backup created below): its values stay put across the restart.
      volumePolicy(
        env.namespace,
        'docs',
        { full: { cron: '0 0 1 1 *' } },
        {
          objectives: { rpo: '1h', rto: '30m' },
          restore: { targets: [{ volume: { claimNames: ['restored'] } }] },
        },
      ),
    ]);
    const policyCreated = Date.parse(
      (await env.read<BackupPolicy>('backuppolicies', 'docs')).metadata.creationTimestamp ?? '',
    );
    const p = await ports();
    let operator = env.startOperator('operator-1', operatorArgs(p, leaderElection));

    // From start-up, before any backup: the source's series, never succeeded, RPO since the policy's creation.
    const scrapedFrom = Date.now();
    const initial = await leading(p, operator);
    assert.deepEqual(await get(p.health, '/readyz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await get(p.health, '/healthz'), { status: 200, body: 'ok\n' });
    assert.equal(initial.get(at('tidemark_source_never_succeeded')), 1);
    assert.equal(initial.get(at('tidemark_source_last_success_timestamp_seconds')), undefined);
    const rpo = initial.get(at('tidemark_source_rpo_seconds')) as number;
    assert.ok(
      rpo >= (scrapedFrom - policyCreated) / 1000 - 1 && rpo <= (Date.now() - policyCreated) / 1000 + 1,
      `RPO ${rpo} s counts from the policy's creation`,
    );
    assert.equal(initial.get(at('tidemark_source_rpo_target_seconds')), 3600);
    assert.equal(initial.get(at('tidemark_source_rto_target_seconds')), 1800);
    assert.equal(initial.get(series('tidemark_unprotected_volumes', { namespace: 'tenants' })), 2);
    assert.ok(initial.has(series('tidemark_controller_reconciles_total', { controller: 'backuppolicy' })));
    assert.ok(initial.has(series('tidemark_controller_queue_depth', { controller: 'backup' })));

    // A second replica waits for the Lease: ready, leader 0, and no object metrics to double-count.
    const standbyPorts = await ports();
    const standby = env.startOperator('operator-standby', operatorArgs(standbyPorts, leaderElection));
    await waitUntil('the standby answers', async () => (await get(standbyPorts.health, '/readyz')).status === 200, {
      timeoutMs: 30_000,
      process: standby,
    });
    const standing = await scrape(standbyPorts);
    assert.equal(standing.get('tidemark_leader'), 0);
    assert.equal([...standing.keys()].filter((k) => k.startsWith('tidemark_source_')).length, 0);
    await standby.stop();

    // A backup and a restore: the metrics say what the status says.
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'Backup',
        metadata: { name: 'docs-now', namespace: env.namespace },
        spec: { policy: 'docs', source: 'documents', type: 'full' },
      },
    ]);
    let lastSuccessTime = '';
    await waitUntil(
      'the policy status reports the backup',
      async () => {
        const policy = await env.read<BackupPolicy>('backuppolicies', 'docs');
        lastSuccessTime = policy.status?.sources?.[0]?.lastSuccessTime ?? '';
        return lastSuccessTime !== '';
      },
      { timeoutMs: 90_000, intervalMs: 500, process: operator },
    );
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'RestoreRequest',
        metadata: { name: 'docs-restore', namespace: env.namespace },
        spec: { from: { backupName: 'docs-now' }, target: { volume: { claimName: 'restored' } } },
      },
    ]);
    let restore: RestoreRequest | undefined;
    await waitUntil(
      'the restore succeeded',
      async () => {
        restore = await env.read<RestoreRequest>('restorerequests', 'docs-restore');
        if (restore.status?.phase === 'Failed') throw new WaitFailed(`restore failed: ${restore.status.error}`);
        return restore.status?.phase === 'Succeeded';
      },
      { timeoutMs: 90_000, intervalMs: 500, process: operator },
    );
    const beforeRestart = await scrape(p);
    assert.equal(
      beforeRestart.get(at('tidemark_source_last_success_timestamp_seconds')),
      Date.parse(lastSuccessTime) / 1000,
    );
    assert.equal(beforeRestart.get(at('tidemark_source_never_succeeded')), 0);
    assert.ok((beforeRestart.get(at('tidemark_source_rpo_seconds')) as number) < 120);
    const byType = { namespace: 'tenants', policy: 'docs', type: 'full' };
    assert.equal(
      beforeRestart.get(series('tidemark_backups', { ...byType, result: 'succeeded', reason: 'Completed' })),
      1,
    );
    assert.equal(beforeRestart.get(series('tidemark_backup_duration_seconds_count', byType)), 1);
    assert.equal(beforeRestart.get(series('tidemark_backup_size_bytes_count', byType)), 1);
    assert.equal(
      beforeRestart.get(
        series('tidemark_restores', { namespace: 'tenants', result: 'succeeded', reason: 'Completed' }),
      ),
      1,
    );
    assert.equal(
      beforeRestart.get(series('tidemark_restore_last_rto_seconds', { namespace: 'tenants', policy: 'docs' })),
      restore?.status?.rtoSeconds,
    );

    // kill -9 and a new process on the same ports: the same values, from the API objects alone.
    await operator.stop('SIGKILL');
    operator = env.startOperator('operator-2', operatorArgs(p, leaderElection));
    const afterRestart = await leading(p, operator);
    for (const name of [
      'tidemark_source_last_success_timestamp_seconds',
      'tidemark_source_never_succeeded',
      'tidemark_source_rpo_target_seconds',
      'tidemark_source_rto_target_seconds',
    ])
      assert.equal(afterRestart.get(at(name)), beforeRestart.get(at(name)), name);
    for (const key of [
      series('tidemark_backups', { ...byType, result: 'succeeded', reason: 'Completed' }),
      series('tidemark_restore_last_rto_seconds', { namespace: 'tenants', policy: 'docs' }),
      series('tidemark_unprotected_volumes', { namespace: 'tenants' }),
    ])
      assert.equal(afterRestart.get(key), beforeRestart.get(key), key);
    assert.ok(
      (afterRestart.get(at('tidemark_source_rpo_seconds')) as number) >
        (beforeRestart.get(at('tidemark_source_rpo_seconds')) as number),
      'the RPO grew with the time since the last success',
    );
  });
});
