// Scheduled audits on the real control plane (R-VERIFY): the audit Job compares each live source with
// its latest successful Backup; the result lands in the policy's status (lastAudit), as an Event and
// as tidemark_audit_missing_objects. Rows and a file added after a backup are missing until the next.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { LastAudit } from '../../src/api/backuppolicy.ts';
import type { Backup, BackupPolicy } from '../../src/api/kinds.ts';
import { freePort } from '../harness/ports.ts';
import type { PostgresServer } from '../harness/postgres.ts';
import { WaitFailed, waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('audit-operator');
let env: TidemarkEnvironment;
let postgres: PostgresServer;
let documents: string;
let metricsPort: number;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { postgres: true });
  postgres = env.postgres as PostgresServer;
  await postgres.psql('create database shop');
  await postgres.psql(
    `create table orders (id bigint primary key, placed timestamptz not null, updated_at timestamptz not null default '2026-01-01');
     insert into orders select g, now() from generate_series(1, 200) g;
     create table customers (id int primary key);
     insert into customers select g from generate_series(1, 20) g;`,
    'shop',
  );
  documents = env.kubelet.claimDir(env.namespace, 'documents');
  await mkdir(join(documents, 'contracts'), { recursive: true });
  await writeFile(join(documents, 'contracts/a.txt'), 'contract a\n');
  // Backups only when the test makes them: the audits run on their own schedule.
  await env.apply([
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'audited', namespace: env.namespace },
      spec: {
        sources: [
          { name: 'shop', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['shop'] } },
          { name: 'documents', volume: { claimName: 'documents' } },
        ],
        schedule: { full: { cron: '0 2 * * *' }, suspend: true },
        repository: 'primary',
        verification: {
          // Named over updated_at (which would be found): backup and audit Jobs both get it.
          audit: { every: '6s', anchor: '2026-01-01T00:00:00Z', timestampColumns: { 'public.orders': 'placed' } },
        },
      },
    },
  ]);
  metricsPort = await freePort();
  env.startOperator('operator', ['--metrics-port', String(metricsPort)]);
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const lastAudits = async (): Promise<Record<string, LastAudit | undefined>> => {
  const policy = await env.read<BackupPolicy>('backuppolicies', 'audited');
  return Object.fromEntries((policy.status?.sources ?? []).map((s) => [s.name, s.lastAudit]));
};

/** Runs a full Backup of each source now (as `kubectl apply` of a Backup would) and waits for success. */
async function backUp(suffix: string): Promise<void> {
  const names = ['shop', 'documents'].map((source) => `audited-${source}-${suffix}`);
  await env.apply(
    ['shop', 'documents'].map((source) => ({
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: `audited-${source}-${suffix}`, namespace: env.namespace },
      spec: { policy: 'audited', source, type: 'full' },
    })),
  );
  await waitUntil(
    `Backups ${names.join(', ')} succeeded`,
    async () => {
      const backups = await Promise.all(names.map((n) => env.get<Backup>('backups', n)));
      if (backups.some((b) => b?.status?.phase === 'Failed'))
        throw new WaitFailed(`a Backup failed: ${JSON.stringify(backups)}`);
      return backups.every((b) => b?.status?.phase === 'Succeeded');
    },
    { timeoutMs: 60_000 },
  );
}

/** The first audits of both sources that ran after `since` and compared with the `suffix` Backups. */
async function auditsAfter(since: number, suffix: string): Promise<Record<string, LastAudit>> {
  let found: Record<string, LastAudit> = {};
  await waitUntil(
    `audits after the ${suffix} Backups`,
    async () => {
      const audits = await lastAudits();
      const done = ['shop', 'documents'].map((source) => audits[source]);
      if (done.some((a) => a?.result === 'Failed')) throw new Error(`an audit failed: ${JSON.stringify(audits)}`);
      const ready = done.every(
        (a) =>
          a &&
          Date.parse(a.scheduledTime) > since &&
          a.backup === `audited-${a === done[0] ? 'shop' : 'documents'}-${suffix}`,
      );
      if (ready) found = audits as Record<string, LastAudit>;
      return ready;
    },
    { timeoutMs: 60_000 },
  );
  return found;
}

async function events(reason: string): Promise<string> {
  return env.cluster.kubectl([
    'get',
    'events',
    '-n',
    env.namespace,
    '--field-selector',
    `reason=${reason},involvedObject.name=audited`,
    '-o',
    'jsonpath={.items[*].message}',
  ]);
}

async function missingMetric(source: string): Promise<number | undefined> {
  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = body
    .split('\n')
    .find((l) => l.startsWith('tidemark_audit_missing_objects{') && l.includes(`source="${source}"`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('a scheduled audit reports rows and files added since the backup in status, Event and metric; after the next backup none', async () => {
  await waitUntil(
    'audits with nothing to compare say so',
    async () => {
      const audits = await lastAudits();
      return audits.shop?.result === 'NoBackup' && audits.documents?.result === 'NoBackup';
    },
    { timeoutMs: 30_000 },
  );
  assert.match(await events('AuditSkipped'), /source shop: audit skipped: no successful backup/);
  assert.equal(await missingMetric('shop'), undefined, 'no comparison, no series');

  await backUp('one');
  await postgres.psql('insert into orders select g, now() from generate_series(201, 212) g', 'shop');
  await writeFile(join(documents, 'contracts/b.txt'), 'contract b, not backed up yet\n');
  const changed = Date.now();

  const audits = await auditsAfter(changed, 'one');
  assert.equal(audits.shop?.result, 'Missing');
  assert.equal(audits.shop?.missingObjects, 12);
  assert.deepEqual(
    audits.shop?.tables?.differences.map((d) => [d.name, d.recorded, d.live, d.missing]),
    [['public.orders', 200, 212, 12]],
  );
  assert.equal(audits.shop?.tables?.compared, 2);
  const orders = audits.shop?.tables?.differences[0];
  assert.deepEqual(orders?.keyAdvanced, { column: 'id', recorded: '200', live: '212' });
  assert.equal(orders?.newerRows?.column, 'placed', 'the column the policy names, recorded by the backup too');
  assert.equal(audits.documents?.result, 'Missing');
  assert.deepEqual(audits.documents?.files?.missing, ['/contracts/b.txt']);
  assert.equal(audits.documents?.missingObjects, 1);
  assert.match(
    await events('AuditFoundMissing'),
    /source shop: 12 rows missing in 1 of 2 tables \(public\.orders 12\), compared with Backup audited-shop-one/,
  );
  assert.match(await events('AuditFoundMissing'), /source documents: 1 files not backed up \(\/contracts\/b\.txt\)/);
  await waitUntil('the metric says what the status says', async () => (await missingMetric('shop')) === 12, {
    timeoutMs: 10_000,
  });
  assert.equal(await missingMetric('documents'), 1);

  await backUp('two');
  const clean = await auditsAfter(Date.now(), 'two');
  assert.deepEqual(
    [clean.shop?.result, clean.shop?.missingObjects, clean.documents?.result, clean.documents?.missingObjects],
    ['Clean', 0, 'Clean', 0],
  );
  assert.match(
    await events('AuditClean'),
    /source shop: no rows missing in 2 tables, compared with Backup audited-shop-two/,
  );
  await waitUntil('the metric drops to 0', async () => (await missingMetric('shop')) === 0, { timeoutMs: 10_000 });
  assert.equal(await missingMetric('documents'), 0);
  const policy = await env.read<BackupPolicy>('backuppolicies', 'audited');
  assert.ok(
    policy.status?.sources?.every((s) => s.lastAudit),
    'the policy controller keeps lastAudit when it writes its status',
  );
});
