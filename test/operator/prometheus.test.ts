// A real Prometheus scrapes the operator (every second, `honor_labels` as the ServiceMonitor sets it,
// the alert rules loaded) and every PromQL expression of the dashboard and of the alert rules is
// evaluated through its HTTP API: each returns data, or the empty set this scenario expects (listed
// below with the reason). The scenario: policy `docs` backs up a volume into the primary and copies it
// to a replica, a restore of it succeeds; policy `never` matches no volume, so every run fails; two
// PVCs no policy selects. SPEC section 3, R-OBJ; issue 12.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Backup, BackupPolicy, RestoreRequest } from '../../src/api/kinds.ts';
import { alertRules, allQueries, ruleFile } from '../harness/monitoring.ts';
import { freePort } from '../harness/ports.ts';
import type { ManagedProcess } from '../harness/process.ts';
import { waitUntil } from '../harness/process.ts';
import { type PrometheusServer, startPrometheus } from '../harness/prometheus.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

/** The job the rules' TidemarkOperatorAbsent / NotLeading select (the metrics Service's name). */
const job = 'tidemark-operator-metrics';
const drillsLand = 'restore drills and audits run from issue 13 on: no such series yet';
/** Queries that must return nothing in this scenario, and why. Every other one must return data. */
const expectedEmpty: Record<string, string> = {
  'alert TidemarkRPOBreached': 'docs succeeded within its 1h target; never has no success (TidemarkNeverSucceeded)',
  'alert TidemarkRPOAtRisk': 'docs is minutes into its 1h target; never has no success',
  'alert TidemarkReplicaLagging': "the replica's copy is seconds old, its objective 1h",
  'alert TidemarkRestoreSlowerThanRTO': 'the restore took seconds, the RTO target is 1h',
  'alert TidemarkRestoreDrillFailing': drillsLand,
  'alert TidemarkRestoreDrillStale': drillsLand,
  'alert TidemarkOperatorAbsent': 'the operator is scraped',
  'alert TidemarkOperatorNotLeading': 'the only operator leads (no leader election: tidemark_leader 1)',
  'panel "Restore drills" A': drillsLand,
  'panel "Restore drills" B': drillsLand,
  'panel "Audit: missing objects" A': 'no policy here audits (test/operator/audit.test.ts checks the series)',
};

const workDir = makeWorkDir('prometheus');
let env: TidemarkEnvironment;
let operator: ManagedProcess;
let prometheus: PrometheusServer;
let metricsPort: number;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true });
  const { namespace } = env;
  const documents = join(env.kubelet.claimDir(namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  await writeFile(join(documents, 'invoice.txt'), 'invoice 1\n'.repeat(1000));
  await env.apply(
    ['documents', 'restored', 'scratch'].map((name) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    })),
  );
  await env.apply([
    volumePolicy(
      namespace,
      'docs',
      { full: { every: '1h' } },
      {
        replicas: [{ repository: 'replica', region: 'westeurope', maxLag: '1h' }],
        objectives: { rpo: '1h', rto: '1h' },
        restore: { targets: [{ volume: { claimNames: ['restored'] } }] },
      },
    ),
    volumePolicy(
      namespace,
      'never',
      { full: { every: '3s', anchor: '2026-01-01T00:00:00Z' } },
      {
        // Matches no PVC: every run fails at once.
        sources: [{ name: 'documents', volume: { selector: { matchLabels: { app: 'nothing' } } } }],
        objectives: { rpo: '10s' },
        jobTemplate: { backoffLimit: 0 },
      },
    ),
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'docs-now', namespace },
      spec: { policy: 'docs', source: 'documents', type: 'full' },
    },
  ]);
  metricsPort = await freePort();
  operator = env.startOperator('operator', ['--metrics-port', String(metricsPort), '--pod-start-timeout', '5']);
  await waitUntil(
    'docs-now in the primary and the replica',
    async () => {
      const backup = await env.get<Backup>('backups', 'docs-now');
      return (
        backup?.status?.phase === 'Succeeded' &&
        (backup.status.repositories ?? []).length === 2 &&
        (backup.status.repositories ?? []).every((r) => r.state === 'Succeeded')
      );
    },
    { timeoutMs: 120_000, process: operator },
  );
  await env.apply([
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name: 'docs-back', namespace },
      spec: { from: { policy: 'docs', source: 'documents' }, target: { volume: { claimName: 'restored' } } },
    },
  ]);
  await waitUntil(
    'the restore succeeded',
    async () => (await env.get<RestoreRequest>('restorerequests', 'docs-back'))?.status?.phase === 'Succeeded',
    { timeoutMs: 90_000, process: operator },
  );
  prometheus = await startPrometheus(workDir.path, {
    job,
    targets: [`127.0.0.1:${metricsPort}`],
    // What the Prometheus Operator adds to a ServiceMonitor's targets.
    targetLabels: { namespace: 'tidemark-system', service: job },
    ruleFiles: { 'tidemark.rules.yaml': ruleFile() },
  });
  // Data for every query: the never policy past its 10 s target with two failures, two scrapes in
  // each rate window, the rules evaluated.
  await waitUntil(
    'Prometheus holds the scenario',
    async () =>
      (await prometheus.query('ALERTS{alertname="TidemarkBackupsFailing"}')).length > 0 &&
      (await prometheus.query(`count_over_time(up{job="${job}"}[1m]) > 3`)).length > 0,
    { timeoutMs: 90_000, process: operator },
  );
});

after(async () => {
  await prometheus?.stop();
  await env?.stop();
  workDir.remove();
});

describe('Prometheus scraping the operator', () => {
  test('every alert rule loads and evaluates without error', async () => {
    const rules = await prometheus.rules();
    assert.deepEqual(
      rules.map((r) => r.name).sort(),
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
  });

  test('every dashboard and alert expression returns data, or the empty set expected here', async () => {
    const queries = allQueries();
    const origins = new Set(queries.map((q) => q.origin));
    for (const origin of Object.keys(expectedEmpty)) assert.ok(origins.has(origin), `no query ${origin}`);
    const wrong: string[] = [];
    for (const { origin, expr } of queries) {
      const result = await prometheus.query(expr);
      const empty = expectedEmpty[origin];
      if (empty === undefined && result.length === 0) wrong.push(`${origin} returned nothing: ${expr}`);
      if (empty !== undefined && result.length > 0)
        wrong.push(`${origin} returned ${JSON.stringify(result)}, expected nothing (${empty})`);
    }
    assert.deepEqual(wrong, []);
  });

  test("the tenant's namespace label survives the scrape, and the dashboard's variables find their values", async () => {
    const targets = await prometheus.query('tidemark_source_rpo_target_seconds');
    assert.deepEqual([...new Set(targets.map((s) => s.metric.namespace))], [env.namespace]);
    assert.ok(targets.every((s) => s.metric.exported_namespace === undefined));
    const builds = await prometheus.query('tidemark_build_info');
    assert.deepEqual([...new Set(builds.map((s) => s.metric.job))], [job]);
  });

  test('the metrics say what the status says: last success and RPO target of docs', async () => {
    const policy = await env.read<BackupPolicy>('backuppolicies', 'docs');
    const [lastSuccess] = await prometheus.query(
      'tidemark_source_last_success_timestamp_seconds{policy="docs",source="documents"}',
    );
    assert.equal(Number(lastSuccess?.value[1]) * 1000, Date.parse(policy.status?.lastSuccessTime ?? ''));
    const [target] = await prometheus.query('tidemark_source_rpo_target_seconds{policy="docs",source="documents"}');
    assert.equal(target?.value[1], '3600');
  });
});
