// Restore drills end to end on the real control plane (issue 13): a policy backs up a PostgreSQL
// database into a filesystem repository and drills every 15 s onto a second PostgreSQL server. A
// drill after the backup restores it into a tidemark_drill_ database, checks it, reports its RTO
// (status, Restorable on the Backup, an Event, the metric); a drill killed midway (SIGKILL to the
// agent's process group) leaves no scratch database once the operator's cleanup ran; a drill of a
// backup whose packs were damaged fails, its metric is 0 and a real Prometheus finds the
// TidemarkRestoreDrillFailing expression true. The source database is the same throughout.
// SPEC R-VERIFY.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup, BackupPolicy } from '../../src/api/kinds.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { alertRules, ruleFile } from '../harness/monitoring.ts';
import { freePort } from '../harness/ports.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { type ManagedProcess, waitUntil } from '../harness/process.ts';
import { type PrometheusServer, startPrometheus } from '../harness/prometheus.ts';
import { PASSPHRASE, secretObject, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('restore-drill');
const job = 'tidemark-operator-metrics';
let env: TidemarkEnvironment;
let source: PostgresServer;
let drills: PostgresServer;
let operator: ManagedProcess;
let prometheus: PrometheusServer;
let sourceChecksum: string;
/** The filesystem repository's directory: the PVC `repository-volume`, mounted at /repository in agent Jobs. */
let repositoryPath: string;

/** The source database's content, to show every drill left it as it was. */
const checksum = () =>
  source.psql(
    `select (select md5(string_agg(i::text, ',' order by id)) from invoices i) || '/' ||
            (select count(*) from pacing) || '/' ||
            (select string_agg(datname, ',' order by datname) from pg_database)`,
    'acme',
  );

/** Databases the drills left on the drill server (theirs or a restore's scratch). */
const scratchDatabases = async () =>
  (await drills.psql("select datname from pg_database where datname like 'tidemark\\_%' order by 1"))
    .split('\n')
    .filter(Boolean);

const policy = () => env.read<BackupPolicy>('backuppolicies', 'tenants');
const drillOf = async () => (await policy()).status?.sources?.find((s) => s.name === 'acme-db')?.lastDrill;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { postgres: true });
  source = env.postgres as PostgresServer;
  drills = await startPostgres(workDir.path, { name: 'drill-server' });
  await source.psql('create database acme');
  // pacing's check slows a restore (and only a restore: its database is tidemark_...) to about 5 s,
  // so a drill can be killed midway.
  await source.psql(
    `create table invoices (id serial primary key, customer text, total int);
     insert into invoices (customer, total) select 'customer ' || g, g from generate_series(1, 3000) g;
     create function drill_pace(id int) returns boolean language plpgsql as $$
     begin
       if current_database() like 'tidemark%' then perform pg_sleep(0.005); end if;
       return true;
     end $$;
     create table pacing (id int primary key check (public.drill_pace(id)));
     insert into pacing select generate_series(1, 1000);`,
    'acme',
  );
  sourceChecksum = await checksum();
  repositoryPath = env.kubelet.claimDir(env.namespace, 'repository-volume');
  await mkdir(repositoryPath, { recursive: true });
  await Repository.init(openStorage(`file://${repositoryPath}`, {}), Buffer.from(PASSPHRASE), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const { namespace } = env;
  await env.apply([
    secretObject(namespace, 'pg-drill', {
      host: drills.host,
      port: String(drills.port),
      username: drills.user,
      password: drills.password,
    }),
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'repository-volume', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupRepository',
      metadata: { name: 'files', namespace },
      spec: {
        provider: 'filesystem',
        filesystem: { path: '/repository', claimName: 'repository-volume' },
        region: 'us-east-1',
        encryptionKeySecret: { name: 'repository-passphrase' },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'tenants', namespace },
      spec: {
        sources: [{ name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } }],
        // Suspended: the only Backup is the on-demand one below.
        schedule: { full: { every: '1h' }, suspend: true },
        repository: 'files',
        objectives: { rto: '15m' },
        verification: { restoreDrill: { every: '15s', postgres: { connectionSecret: { name: 'pg-drill' } } } },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'acme-now', namespace },
      spec: { policy: 'tenants', source: 'acme-db', type: 'full' },
    },
  ]);
  const metricsPort = await freePort();
  operator = env.startOperator('operator', ['--metrics-port', String(metricsPort), '--pod-start-timeout', '20']);
  prometheus = await startPrometheus(workDir.path, {
    job,
    targets: [`127.0.0.1:${metricsPort}`],
    targetLabels: { namespace: 'tidemark-system', service: job },
    ruleFiles: { 'tidemark.rules.yaml': ruleFile() },
  });
});

after(async () => {
  await prometheus?.stop();
  await env?.stop();
  await drills?.stop();
  workDir.remove();
});

async function eventMessages(reason: string): Promise<string> {
  return env.cluster.kubectl([
    'get',
    'events',
    '-n',
    env.namespace,
    '--field-selector',
    `reason=${reason},involvedObject.name=tenants`,
    '-o',
    'jsonpath={.items[*].message}',
  ]);
}

/** The drill Job's running agent pod (its process group is the container's pid), once there is one. */
async function runningDrillPod(): Promise<{ name: string; pid: number } | undefined> {
  const core = env.cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const pods = await core.listNamespacedPod({
    namespace: env.namespace,
    labelSelector: 'tidemark.dev/task=drill,tidemark.dev/drill-mode=drill',
  });
  for (const pod of pods.items) {
    const id = pod.status?.containerStatuses?.[0]?.containerID;
    if (pod.status?.phase === 'Running' && id?.startsWith('process://'))
      return { name: pod.metadata?.name ?? '', pid: Number(id.slice('process://'.length)) };
  }
  return undefined;
}

describe('restore drills', () => {
  test('a drill after a backup restores, verifies and reports its RTO: status, Restorable, Event, metric', async () => {
    await waitUntil('a successful drill of acme-now', async () => (await drillOf())?.result === 'Succeeded', {
      timeoutMs: 180_000,
      intervalMs: 1000,
      process: operator,
    });
    const drill = await drillOf();
    assert.equal(drill?.backup, 'acme-now');
    assert.ok((drill?.rtoSeconds ?? 0) >= 5, `RTO ${drill?.rtoSeconds}s covers the paced restore`);
    assert.equal(drill?.rtoTargetSeconds, 900);
    assert.match(
      drill?.message ?? '',
      /found the 2 tables the backup recorded with their row counts \(2 with their content checksums\).*within the 900s RTO target/,
    );
    const status = (await policy()).status?.sources?.find((s) => s.name === 'acme-db');
    assert.ok(status?.lastDrillSuccessTime);
    const restorable = (await env.read<Backup>('backups', 'acme-now')).status?.conditions?.find(
      (c) => c.type === 'Restorable',
    );
    assert.equal(restorable?.status, 'True');
    assert.equal(restorable?.reason, 'DrillSucceeded');
    assert.match(await eventMessages('DrillSucceeded'), /restored acme-now into a drill database/);
    await waitUntil(
      'Prometheus has the drill result 1',
      async () =>
        (await prometheus.query('tidemark_restore_drill_last_result{policy="tenants",source="acme-db"} == 1'))
          .length === 1 &&
        (await prometheus.query('tidemark_restore_drill_last_success_timestamp_seconds{source="acme-db"}')).length ===
          1,
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    assert.equal(await checksum(), sourceChecksum);
  });

  test('a drill killed midway leaves no scratch database after the next reconcile', async () => {
    let killed: { name: string; pid: number } | undefined;
    let left: string[] = [];
    await waitUntil(
      'a drill restoring into its scratch database',
      async () => {
        const pod = await runningDrillPod();
        left = pod ? await scratchDatabases() : [];
        if (!pod || left.length === 0) return false;
        process.kill(-pod.pid, 'SIGKILL'); // the agent and its psql clients, as a lost node would
        killed = pod;
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 200, process: operator },
    );
    assert.ok(killed);
    await waitUntil(
      `the killed drill recorded and ${left.join(', ')} dropped`,
      async () => {
        const drill = await drillOf();
        const remaining = new Set(await scratchDatabases());
        return /ended without reporting/.test(drill?.message ?? '') && left.every((d) => !remaining.has(d));
      },
      { timeoutMs: 90_000, intervalMs: 1000, process: operator },
    );
    assert.match(
      await env.cluster.kubectl([
        'get',
        'jobs',
        '-n',
        env.namespace,
        '-l',
        'tidemark.dev/drill-mode=cleanup',
        '-o',
        'name',
      ]),
      /cleanup/,
    );
    assert.equal(await checksum(), sourceChecksum);
  });

  test('a drill of a damaged backup fails, Restorable turns False, the metric is 0 and the alert expression holds', async () => {
    // Every pack of the repository gets a damaged byte in its middle.
    const packs: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }))
        if (entry.isDirectory()) await walk(join(dir, entry.name));
        else packs.push(join(dir, entry.name));
    };
    await walk(join(repositoryPath, 'data'));
    assert.ok(packs.length > 0);
    for (const pack of packs) {
      const bytes = await readFile(pack);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
      await writeFile(pack, bytes);
    }
    await waitUntil(
      'a failed drill of the damaged backup',
      async () => {
        const drill = await drillOf();
        return drill?.result === 'Failed' && !/ended without reporting/.test(drill.message);
      },
      { timeoutMs: 120_000, intervalMs: 1000, process: operator },
    );
    const drill = await drillOf();
    assert.equal(drill?.backup, 'acme-now');
    assert.match(drill?.message ?? '', /\(Corrupt\)/, 'the failure names the damage, not a stream that closed early');
    const restorable = (await env.read<Backup>('backups', 'acme-now')).status?.conditions?.find(
      (c) => c.type === 'Restorable',
    );
    assert.equal(restorable?.status, 'False', JSON.stringify(drill));
    assert.equal(restorable?.reason, 'DrillFailed');
    assert.ok((await eventMessages('DrillFailed')).length > 0);
    const failing = alertRules().find((r) => r.alert === 'TidemarkRestoreDrillFailing');
    assert.ok(failing);
    await waitUntil(
      'Prometheus finds the TidemarkRestoreDrillFailing expression true',
      async () =>
        (await prometheus.query(failing.expr)).some(
          (s) => s.metric.policy === 'tenants' && s.metric.source === 'acme-db',
        ),
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    assert.equal(await checksum(), sourceChecksum);
    assert.deepEqual(await scratchDatabases(), [], 'the failed drill dropped its database');
  });
});
