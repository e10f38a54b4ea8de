// What a BackupPolicy says about itself is true (issue #8, findings 2, 6, 7 and 11) on the real
// control plane: no invented success times, RPOMet that says "never", replica health with maxLag,
// verification that says what restore drills do not cover, and retention that keeps what it promises to keep
// (maxAge alone, bounded failures, Backups a pending RestoreRequest needs, immutable snapshots).
// SPEC R-SCHED, R-REPL, R-RET, R-OBJ.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Condition } from '../../src/api/common.ts';
import type { Backup, BackupPolicy } from '../../src/api/kinds.ts';
import { waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('policy-status');
let env: TidemarkEnvironment;
const every = (interval: string) => ({ full: { every: interval, anchor: '2026-01-01T00:00:00Z' } });

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true });
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 3; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(500));
  env.startOperator('operator', ['--storage-retry-budget', '10s']); // its replica is stopped on purpose
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const policy = (name: string) => env.read<BackupPolicy>('backuppolicies', name);

const condition = (p: BackupPolicy, type: string): Condition | undefined =>
  p.status?.conditions?.find((c) => c.type === type);

async function backupsOf(name: string): Promise<Backup[]> {
  return (await env.backups()).filter((b) => b.spec.policy === name);
}

/** Succeeded Backups retention has not removed (a removed one may linger while its finalizer runs). */
const succeeded = (list: Backup[]) =>
  list.filter((b) => b.status?.phase === 'Succeeded' && !b.metadata.deletionTimestamp);

async function suspend(name: string): Promise<void> {
  await env.cluster.kubectl([
    'patch',
    'backuppolicy',
    name,
    '-n',
    env.namespace,
    '--type=merge',
    '-p',
    '{"spec":{"schedule":{"suspend":true}}}',
  ]);
}

async function eventMessages(reason: string, involved: string): Promise<string> {
  return env.cluster.kubectl([
    'get',
    'events',
    '-n',
    env.namespace,
    '--field-selector',
    `reason=${reason},involvedObject.name=${involved}`,
    '-o',
    'jsonpath={.items[*].message}',
  ]);
}

/** `kubectl get backuppolicies NAME` as a header → value map. */
async function columns(name: string): Promise<Record<string, string>> {
  const out = await env.cluster.kubectl(['get', 'backuppolicies', name, '-n', env.namespace]);
  const [header = '', row = ''] = out.trim().split('\n');
  const starts = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ name: m[0], at: m.index ?? 0 }));
  return Object.fromEntries(
    starts.map((s, i) => [s.name, row.slice(s.at, starts[i + 1]?.at ?? row.length).trim()] as const),
  );
}

describe('no invented success times (finding 2)', () => {
  test('a policy whose only source never succeeds has no last success: RPOMet Unknown in its first window, then False NoSuccessfulBackup', async () => {
    const applied = Date.now();
    await env.apply([
      volumePolicy(env.namespace, 'never', every('5s'), {
        // Matches no PVC: every run fails at once.
        sources: [{ name: 'documents', volume: { selector: { matchLabels: { app: 'nothing' } } } }],
        objectives: { rpo: '20s' },
        jobTemplate: { backoffLimit: 0 },
      }),
    ]);
    await waitUntil(
      'a failed run and a status',
      async () =>
        (await backupsOf('never')).some((b) => b.status?.phase === 'Failed') &&
        (await policy('never')).status?.sources !== undefined,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const early = await policy('never');
    assert.equal(early.status?.lastSuccessTime, undefined, 'no lastSuccessTime without a successful backup');
    assert.equal(early.status?.sources?.[0]?.lastSuccessTime, undefined);
    if (Date.now() - applied < 15_000) {
      const rpo = condition(early, 'RPOMet');
      assert.equal(rpo?.status, 'Unknown');
      assert.equal(rpo?.reason, 'FirstBackupPending');
      assert.match(rpo?.message ?? '', /documents: never succeeded.*first RPO window/);
    }
    await waitUntil('RPOMet False', async () => condition(await policy('never'), 'RPOMet')?.status === 'False', {
      timeoutMs: 40_000,
    });
    const late = await policy('never');
    assert.equal(condition(late, 'RPOMet')?.reason, 'NoSuccessfulBackup');
    assert.match(condition(late, 'RPOMet')?.message ?? '', /documents \(never succeeded\)/);
    assert.equal(late.status?.lastSuccessTime, undefined);
    const shown = await columns('never');
    assert.equal(shown['LAST SUCCESS'], '', 'kubectl shows no age for a policy that never succeeded');
    assert.equal(shown['RPO MET'], 'False');
  });

  test('deleting every Backup of a policy takes its last success away instead of inventing one', async () => {
    await env.apply([volumePolicy(env.namespace, 'forgotten', every('5s'), { objectives: { rpo: '1h' } })]);
    await waitUntil('a success', async () => succeeded(await backupsOf('forgotten')).length > 0, {
      timeoutMs: 60_000,
    });
    await waitUntil('the policy shows it', async () => Boolean((await policy('forgotten')).status?.lastSuccessTime), {
      timeoutMs: 20_000,
    });
    await suspend('forgotten');
    await waitUntil(
      'runs settled',
      async () => (await backupsOf('forgotten')).every((b) => ['Succeeded', 'Failed'].includes(b.status?.phase ?? '')),
      { timeoutMs: 60_000 },
    );
    await env.cluster.kubectl(['delete', 'backups', '-n', env.namespace, '-l', 'tidemark.dev/policy=forgotten']);
    await waitUntil('Backups gone', async () => (await backupsOf('forgotten')).length === 0, { timeoutMs: 60_000 });
    await waitUntil(
      'no last success any more',
      async () => {
        const p = await policy('forgotten');
        return p.status?.lastSuccessTime === undefined && condition(p, 'RPOMet')?.status !== 'True';
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(condition(await policy('forgotten'), 'RPOMet')?.reason, 'FirstBackupPending');
  });
});

describe('retention keeps what it says (finding 11)', () => {
  test('failed Backups of a source that keeps failing are bounded', async () => {
    const seen = new Set<string>();
    let current: Backup[] = [];
    await waitUntil(
      'more failures than are kept, and the oldest removed',
      async () => {
        current = (await backupsOf('never')).filter(
          (b) => b.status?.phase === 'Failed' && !b.metadata.deletionTimestamp,
        );
        for (const b of current) seen.add(b.metadata.name ?? '');
        return seen.size >= 6 && current.length <= 3;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.ok(current.length <= 3, `at most 3 failed Backups kept, found ${current.length}`);
    assert.match(await eventMessages('BackupRemoved', 'never'), /newest 3 failed/);
    await suspend('never');
  });

  test('maxAge alone keeps every Backup younger than maxAge (no silent keepLastFull 7)', async () => {
    await env.apply([volumePolicy(env.namespace, 'aged', every('3s'), { retention: { maxAge: '10m' } })]);
    await waitUntil(
      'nine successful Backups kept at once',
      async () => succeeded(await backupsOf('aged')).length >= 9,
      {
        timeoutMs: 150_000,
        intervalMs: 1000,
      },
    );
    await suspend('aged');
  });

  test('a Backup named by a RestoreRequest that has not ended survives retention until the request goes', async () => {
    await env.apply([
      volumePolicy(env.namespace, 'restored', every('5s'), {
        retention: { keepLastFull: 1 },
        restore: {
          approval: { required: 1, approverUsers: ['carol@acme.example'] },
          targets: [{ volume: { claimNames: ['scratch'] } }],
        },
      }),
    ]);
    await env.apply([
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'scratch', namespace: env.namespace },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    ]);
    await waitUntil('a first success', async () => succeeded(await backupsOf('restored')).length > 0, {
      timeoutMs: 60_000,
    });
    const first = succeeded(await backupsOf('restored'))[0]?.metadata.name ?? '';
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'RestoreRequest',
        metadata: { name: 'awaiting-approval', namespace: env.namespace },
        spec: {
          from: { backupName: first },
          target: { volume: { claimName: 'scratch' } },
          requestedBy: 'dave@acme.example',
        },
      },
    ]);
    await waitUntil(
      'the request waits for approval',
      async () =>
        JSON.parse(
          await env.cluster.kubectl(['get', 'restorerequest', 'awaiting-approval', '-n', env.namespace, '-o', 'json']),
        ).status?.phase === 'PendingApproval',
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    const seen = new Set<string>();
    await waitUntil(
      'two newer successes, and retention removed one of them',
      async () => {
        const list = succeeded(await backupsOf('restored'));
        for (const b of list) seen.add(b.metadata.name ?? '');
        return seen.size >= 3 && list.length < seen.size;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const names = (await backupsOf('restored')).map((b) => b.metadata.name);
    assert.ok(names.includes(first), `${first} is kept while the restore waits for approval`);
    const holds = (await policy('restored')).status?.retentionHolds ?? [];
    assert.ok(
      holds.some((h) => h.backup === first && /RestoreRequest awaiting-approval has not ended/.test(h.reason)),
      `the policy says why ${first} is kept: ${JSON.stringify(holds)}`,
    );
    await suspend('restored');
    await env.cluster.kubectl(['delete', 'restorerequest', 'awaiting-approval', '-n', env.namespace]);
    await waitUntil(
      'retention removes it once the request is gone',
      async () => !(await backupsOf('restored')).some((b) => b.metadata.name === first),
      { timeoutMs: 30_000 },
    );
  });

  test('a Backup inside its repository immutability period is not removed before the period ends', async () => {
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'BackupRepository',
        metadata: { name: 'locked', namespace: env.namespace },
        spec: {
          provider: 's3',
          s3: { bucket: 'backups', endpoint: env.s3.endpoint, forcePathStyle: true },
          prefix: `${env.namespace}-locked`,
          region: 'us-east-1',
          credentialsSecret: { name: 's3-credentials' },
          encryptionKeySecret: { name: 'repository-passphrase' },
          immutability: { period: '40s' },
        },
      },
      volumePolicy(env.namespace, 'locked', every('5s'), { repository: 'locked', retention: { keepLastFull: 1 } }),
    ]);
    await waitUntil('a first success', async () => succeeded(await backupsOf('locked')).length > 0, {
      timeoutMs: 90_000,
    });
    const first = succeeded(await backupsOf('locked'))[0] as Backup;
    const name = first.metadata.name ?? '';
    const seen = new Set<string>();
    await waitUntil(
      'two newer successes',
      async () => {
        for (const b of succeeded(await backupsOf('locked'))) seen.add(b.metadata.name ?? '');
        return seen.size >= 3;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const lockedUntil = new Date(first.status?.completionTime ?? 0).getTime() + 40_000;
    if (Date.now() < lockedUntil - 2000) {
      assert.ok(
        (await backupsOf('locked')).some((b) => b.metadata.name === name),
        `${name} is still immutable`,
      );
      const holds = (await policy('locked')).status?.retentionHolds ?? [];
      assert.ok(
        holds.some((h) => h.backup === name && /immutable in locked until/.test(h.reason)),
        `the policy says why ${name} is kept: ${JSON.stringify(holds)}`,
      );
    }
    await waitUntil(
      'removed once the period is over',
      async () => !(await backupsOf('locked')).some((b) => b.metadata.name === name),
      { timeoutMs: 60_000 },
    );
    assert.ok(Date.now() >= lockedUntil, 'not removed before the immutability period ended');
    await suspend('locked');
  });
});

describe('replicas and verification (findings 6 and 7)', () => {
  test('replica health shows the newest copy, turns False when it is older than maxLag, and verification says drills cover the volume source', async () => {
    await env.apply([
      volumePolicy(env.namespace, 'replicated', every('8s'), {
        replicas: [{ repository: 'replica', region: 'westeurope', maxLag: '25s' }],
        verification: { restoreDrill: { every: '1h' } },
      }),
    ]);
    await waitUntil(
      'a copy in the replica',
      async () => condition(await policy('replicated'), 'ReplicasHealthy')?.status === 'True',
      { timeoutMs: 90_000 },
    );
    const healthy = await policy('replicated');
    const replica = healthy.status?.replicas?.find((r) => r.repository === 'replica');
    assert.ok(replica?.lastCopyTime, 'lastCopyTime is set');
    assert.ok(replica?.newestSnapshotTime, 'newestSnapshotTime is set');
    assert.equal((await columns('replicated')).REPLICAS, 'True');

    // Volume sources drill into a scratch PVC of their own: nothing to name, every source is covered.
    const verification = condition(healthy, 'Verification');
    assert.equal(verification?.status, 'True', JSON.stringify(verification));
    assert.equal(verification?.reason, 'DrillsScheduled');

    await suspend('replicated');
    await waitUntil(
      'maxLag passed',
      async () => condition(await policy('replicated'), 'ReplicasHealthy')?.status === 'False',
      { timeoutMs: 60_000 },
    );
    const lagging = condition(await policy('replicated'), 'ReplicasHealthy');
    assert.equal(lagging?.reason, 'LagExceeded');
    assert.match(lagging?.message ?? '', /replica: newest snapshot .* older than maxLag 25s/);
    const shown = await columns('replicated');
    assert.equal(shown.REPLICAS, 'False');
    assert.equal(shown['NEXT RUN'], '', 'a suspended policy announces no next run');
  });

  test('a failing copy shows on the policy: ReplicasHealthy False ReplicationFailing, naming the Backup', async () => {
    await env.azurite?.stop();
    await env.cluster.kubectl([
      'patch',
      'backuppolicy',
      'replicated',
      '-n',
      env.namespace,
      '--type=merge',
      '-p',
      '{"spec":{"schedule":{"suspend":false}}}',
    ]);
    // A copy fails once the agent's 10 s retry budget is spent, after a backup slot (8 s) and its Job.
    await waitUntil(
      'the copy failed',
      async () => condition(await policy('replicated'), 'ReplicasHealthy')?.reason === 'ReplicationFailing',
      { timeoutMs: 300_000, intervalMs: 1000 },
    ).catch(async (error: Error) => {
      const backups = await env.cluster.kubectl(['get', 'backups', '-n', env.namespace, '-o', 'json']);
      const states = (JSON.parse(backups).items as Backup[])
        .filter((b) => b.spec.policy === 'replicated')
        .map((b) => ({ name: b.metadata.name, phase: b.status?.phase, repositories: b.status?.repositories }));
      const shown = condition(await policy('replicated'), 'ReplicasHealthy');
      throw new Error(`${error.message}; ReplicasHealthy ${JSON.stringify(shown)}; Backups ${JSON.stringify(states)}`);
    });
    const failing = condition(await policy('replicated'), 'ReplicasHealthy');
    assert.equal(failing?.status, 'False');
    assert.match(failing?.message ?? '', /replica: copy of replicated-documents-full-\S+ failed/);
    await suspend('replicated');
  });
});
