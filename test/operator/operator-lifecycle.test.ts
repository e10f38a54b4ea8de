// Retention and failure through the operator: exactly the Backups and snapshots the pure retention
// function keeps remain; a storage outage fails a run with a clear reason, breaks the RPO objective,
// and the next run after the outage succeeds. SPEC R-RET, R-OBJ, R-BACKUP.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Backup, BackupPolicy } from '../../src/api/kinds.ts';
import { applyRetention } from '../../src/operator/retention/retention.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { waitUntil } from '../harness/process.ts';
import { PASSPHRASE, startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('lifecycle');
let env: TidemarkEnvironment;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(5000));
  // A short storage retry budget for agents, so that a run during the S3 outage below fails within its waits.
  env.startOperator('operator', ['--storage-retry-budget', '10s']);
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const policy = (name: string) => env.read<BackupPolicy>('backuppolicies', name);

const finished = (b: Backup) => b.status?.phase === 'Succeeded' || b.status?.phase === 'Failed';

describe('retention', () => {
  test('with keepLastFull 3, exactly the Backups and snapshots the retention function keeps remain', async () => {
    await env.apply([
      volumePolicy(
        env.namespace,
        'retained',
        {
          full: { every: '24s', anchor: '2026-01-01T00:00:00Z' },
          incremental: { every: '8s', anchor: '2026-01-01T00:00:04Z' },
        },
        { retention: { keepLastFull: 3 } },
      ),
    ]);
    const seen = new Map<string, Backup>();
    await waitUntil(
      'a fourth full backup has pushed the first chain out',
      async () => {
        for (const b of (await env.backups()).filter((x) => x.spec.policy === 'retained'))
          seen.set(b.metadata.name ?? '', b);
        const fulls = [...seen.values()].filter((b) => b.spec.type === 'full' && b.status?.phase === 'Succeeded');
        return fulls.length >= 4;
      },
      { timeoutMs: 240_000, intervalMs: 500 },
    );
    await env.cluster.kubectl([
      'patch',
      'backuppolicy',
      'retained',
      '-n',
      env.namespace,
      '--type=merge',
      '-p',
      '{"spec":{"schedule":{"suspend":true}}}',
    ]);
    await waitUntil(
      'runs settled',
      async () => (await env.backups()).filter((b) => b.spec.policy === 'retained').every(finished),
      { timeoutMs: 60_000 },
    );
    for (const b of (await env.backups()).filter((x) => x.spec.policy === 'retained'))
      seen.set(b.metadata.name ?? '', b);

    const everything = [...seen.values()].filter(finished);
    const expected = applyRetention(
      everything.map((b) => ({
        name: b.metadata.name ?? '',
        type: b.spec.type ?? 'full',
        chainId: b.status?.chainId ?? '',
        completionTime: new Date(b.status?.completionTime ?? 0),
        phase: b.status?.phase === 'Succeeded' ? 'Succeeded' : 'Failed',
      })),
      { keepLastFull: 3 },
      new Date(),
    );
    const keep = new Set(expected.filter((d) => d.keep).map((d) => d.name));
    assert.ok(
      expected.some((d) => !d.keep),
      'retention removed something',
    );
    await waitUntil(
      'the Backups retention removes are gone, with their snapshots',
      async () => {
        const names = new Set(
          (await env.backups()).filter((b) => b.spec.policy === 'retained').map((b) => b.metadata.name ?? ''),
        );
        return names.size === keep.size && [...keep].every((n) => names.has(n));
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    const repository = await Repository.open(openStorage(env.primaryUrl, env.s3Env), Buffer.from(PASSPHRASE));
    const snapshots = new Set(
      (await repository.snapshots())
        .filter((s) => s.source === 'tenants/retained/documents')
        .map((s) => s.id as string),
    );
    const kept = everything
      .filter((b) => keep.has(b.metadata.name ?? '') && b.status?.snapshotId)
      .map((b) => b.status?.snapshotId as string);
    assert.deepEqual(
      [...snapshots].sort(),
      kept.sort(),
      'the repository holds exactly the snapshots of the kept Backups',
    );

    const events = await env.cluster.kubectl([
      'get',
      'events',
      '-n',
      env.namespace,
      '--field-selector',
      'reason=BackupRemoved',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    assert.match(events, /retention removed .*: /, 'an Event says why each Backup was removed');
    await env.cluster.kubectl(['delete', 'backuppolicy', 'retained', '-n', env.namespace]);
  });
});

describe('storage outage', () => {
  test('a run during an S3 outage fails with a clear reason, RPOMet turns false, and the next run after it succeeds', async () => {
    await env.apply([
      volumePolicy(
        env.namespace,
        'outage',
        { full: { every: '10s', anchor: '2026-01-01T00:00:00Z' } },
        { objectives: { rpo: '25s' }, jobTemplate: { backoffLimit: 0 } },
      ),
    ]);
    const ofPolicy = async () => (await env.backups()).filter((b) => b.spec.policy === 'outage');
    await waitUntil('a first success', async () => (await ofPolicy()).some((b) => b.status?.phase === 'Succeeded'), {
      timeoutMs: 90_000,
    });
    await env.s3.stop();
    const outageStarted = new Date().toISOString();
    await waitUntil('a run failed', async () => (await ofPolicy()).some((b) => b.status?.phase === 'Failed'), {
      timeoutMs: 120_000,
    });
    const failed = (await ofPolicy()).find((b) => b.status?.phase === 'Failed');
    assert.match(
      failed?.status?.error ?? '',
      /s3:\/\/backups\/tenants.*(ECONNREFUSED|connect|unreachable|after \d+ attempts)/i,
    );
    await waitUntil(
      'RPOMet false',
      async () => (await policy('outage')).status?.conditions?.find((c) => c.type === 'RPOMet')?.status === 'False',
      {
        timeoutMs: 60_000,
      },
    );
    assert.match(
      (await policy('outage')).status?.conditions?.find((c) => c.type === 'RPOMet')?.message ?? '',
      /documents/,
    );

    await env.s3.restart();
    await waitUntil(
      'a success after the outage',
      async () =>
        (await ofPolicy()).some((b) => b.status?.phase === 'Succeeded' && (b.status.startTime ?? '') > outageStarted),
      { timeoutMs: 120_000 },
    );
    await waitUntil(
      'RPOMet true again',
      async () => (await policy('outage')).status?.conditions?.find((c) => c.type === 'RPOMet')?.status === 'True',
      {
        timeoutMs: 30_000,
      },
    );
  });
});
