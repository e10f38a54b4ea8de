// The operator survives what operators meet: being killed mid-run, losing a Job while down, and
// running as two replicas of which only the Lease holder acts. SPEC R-SCHED, R-BACKUP.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../src/api/kinds.ts';
import { waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('resilience');
let env: TidemarkEnvironment;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 10; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(10_000));
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const slotsOf = (backups: Backup[]) => backups.map((b) => b.spec.scheduledTime).filter(Boolean) as string[];

describe('restart', () => {
  test('killing the operator mid-run creates no duplicate and misses no run; a lost Job fails its Backup, and the next run proceeds', async () => {
    let operator = env.startOperator('operator-1');
    await env.apply([
      volumePolicy(env.namespace, 'restart', { full: { every: '15s', anchor: '2026-01-01T00:00:00Z' } }),
    ]);
    await waitUntil('a running backup', async () => (await env.backups()).some((b) => b.status?.phase === 'Running'), {
      timeoutMs: 60_000,
    });
    await operator.stop('SIGKILL');
    const atKill = await env.backups();
    const running = atKill.find((b) => b.status?.phase === 'Running') as Backup;

    // While the operator is down: its Job disappears, and at least one more slot passes.
    const batch = env.cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
    await batch.deleteNamespacedJob({
      name: running.status?.jobName ?? '',
      namespace: env.namespace,
      propagationPolicy: 'Background',
    });
    await new Promise((r) => setTimeout(r, 20_000));

    operator = env.startOperator('operator-2');
    await waitUntil(
      'the lost run failed and a later run succeeded',
      async () => {
        const all = await env.backups();
        const lost = all.find((b) => b.metadata.name === running.metadata.name);
        const later = all.filter(
          (b) => (b.spec.scheduledTime ?? '') > (running.spec.scheduledTime ?? '') && b.status?.phase === 'Succeeded',
        );
        return lost?.status?.phase === 'Failed' && later.length > 0;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    const all = await env.backups();
    const lost = all.find((b) => b.metadata.name === running.metadata.name);
    assert.match(lost?.status?.error ?? '', /Job .* disappeared/);
    const slots = slotsOf(all);
    assert.equal(new Set(slots).size, slots.length, 'one Backup per slot: no duplicates');
    // The slot that came due while the operator was down ran once, as the catch-up.
    const downtimeSlots = slots.filter((s) => s > (running.spec.scheduledTime ?? ''));
    assert.ok(downtimeSlots.length >= 1);
    await operator.stop();
    await env.cluster.kubectl(['delete', 'backuppolicy', 'restart', '-n', env.namespace]);
  });
});

describe('two replicas', () => {
  test('only the Lease holder acts; killing it hands over within the lease time', async () => {
    const args = ['--leader-elect', '--lease-namespace', env.namespace, '--lease-duration', '4'];
    const first = env.startOperator('replica-a', args);
    await waitUntil('a leader', async () => (await lease())?.spec?.holderIdentity !== undefined, { timeoutMs: 30_000 });
    const second = env.startOperator('replica-b', args);
    await new Promise((r) => setTimeout(r, 5000));
    const holder = (await lease())?.spec?.holderIdentity ?? '';
    const leader = holder.endsWith(`-${first.child.pid}`) ? first : second;
    const follower = leader === first ? second : first;
    assert.ok(holder.endsWith(`-${leader.child.pid}`), `the Lease names one replica: ${holder}`);
    assert.ok(!(await logOf(follower)).includes('controllers running'), 'the follower runs no controller');

    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await waitUntil(
      'the follower takes over',
      async () => (await lease())?.spec?.holderIdentity?.endsWith(`-${follower.child.pid}`) ?? false,
      {
        timeoutMs: 20_000,
        intervalMs: 200,
      },
    );
    const handover = Date.now() - killedAt;
    assert.ok(handover < 4000 + 2000, `handed over in ${handover} ms (lease 4 s + one retry period)`);
    await waitUntil(
      'the new leader runs the controllers',
      async () => (await logOf(follower)).includes('controllers running'),
      { timeoutMs: 10_000 },
    );
    await follower.stop();
  });
});

async function lease(): Promise<k8s.V1Lease | undefined> {
  const api = env.cluster.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
  return api.readNamespacedLease({ name: 'tidemark-operator', namespace: env.namespace }).catch(() => undefined);
}

async function logOf(process: { logFile: string }): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(process.logFile, 'utf8').catch(() => '');
}
