// The demo: a local control plane, PostgreSQL, an S3 server and Azurite, the operator, a policy, a
// backup and its replica, a restore into a QA copy, `kubectl get` of it all, Prometheus scraping the
// operator (the RPO and RTO it measured, through PromQL), a restore drill and an audit, `kubectl tidemark
// status`, the day's report and an export behind a link that expires.
// `--keep` leaves everything running (Ctrl-C stops it) and prints how to point kubectl at it.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { installKubectlPlugin, kubectlWithPlugins } from '../test/harness/kubectl-plugin.ts';
import { freePort } from '../test/harness/ports.ts';
import { startPostgres } from '../test/harness/postgres.ts';
import { waitUntil } from '../test/harness/process.ts';
import { type PrometheusServer, startPrometheus } from '../test/harness/prometheus.ts';
import { secretObject, startTidemarkEnvironment } from '../test/harness/tidemark.ts';
import { goTool } from '../test/harness/tools.ts';
import { makeWorkDir } from '../test/harness/workdir.ts';

const keep = process.argv.includes('--keep');
const workDir = makeWorkDir('demo');
const step = (text: string) => console.log(`\n==> ${text}`);
const jsonpath = (resource: string, path: string) =>
  env.cluster.kubectl(['get', resource, '-n', 'tenants', '-o', `jsonpath=${path}`]).catch(() => '');

step('starting etcd, kube-apiserver, kube-controller-manager, PostgreSQL, versitygw (S3) and Azurite');
const started = Date.now();
const env = await startTidemarkEnvironment(workDir.path, { azurite: true, postgres: true });
const postgres = env.postgres as NonNullable<typeof env.postgres>;
console.log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s; control plane at ${env.cluster.server}`);
let prometheusServer: PrometheusServer | undefined;
try {
  step('a tenant database: acme, with customers and invoices');
  await postgres.psql('create database acme');
  await postgres.psql(
    `create table customers (id serial primary key, email text);
     insert into customers (email) select 'customer' || g || '@acme.example' from generate_series(1, 1000) g;
     create table invoices (id serial primary key, customer int references customers, total numeric);
     insert into invoices (customer, total) select 1 + g % 1000, g * 1.5 from generate_series(1, 20000) g;`,
    'acme',
  );

  step(
    'the operator (logs in the work directory), Prometheus scraping its /metrics, and a BackupPolicy: S3 primary, Azure replica, four-eyes restores off',
  );
  // What the chart installs for agent pods: read their namespace, write the catalog ConfigMap and an export's link Secret.
  await env.cluster.kubectl(['apply', '-f', join(import.meta.dirname, '../deploy/agent-rbac.yaml')]);
  const metricsPort = await freePort();
  env.startOperator('operator', ['--metrics-port', String(metricsPort)]);
  const prometheus = await startPrometheus(workDir.path, { job: 'tidemark', targets: [`127.0.0.1:${metricsPort}`] });
  prometheusServer = prometheus;
  console.log(`Prometheus at ${prometheus.url}, scraping 127.0.0.1:${metricsPort}/metrics every second`);
  const policy = {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name: 'demo', namespace: 'tenants' },
    spec: {
      sources: [{ name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } }],
      schedule: { full: { every: '1h' }, incremental: { cron: '*/5 * * * *' } },
      repository: 'primary',
      replicas: [{ repository: 'replica', region: 'westeurope' }],
      retention: { keepLastFull: 4, keepDaily: 7 },
      objectives: { rpo: '1h', rto: '15m' },
      allowedRegions: ['us-east-1', 'westeurope'],
      restore: {
        targets: [{ postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme_qa'] } }],
        // pg-main's user is the demo server's superuser: stated explicitly, as the API requires.
        postRestoreScripts: [
          {
            name: 'anonymise',
            sql: "update customers set email = 'user' || id || '@example.invalid';",
            runAsRestoreUser: true,
          },
        ],
      },
    },
  };
  console.log(stringify(policy));
  await env.apply([policy]);

  step('waiting for the first backup and its replica');
  await waitUntil(
    'a replicated backup',
    async () =>
      (await jsonpath('backups', '{.items[*].status.repositories[*].state}'))
        .split(' ')
        .filter((s) => s === 'Succeeded').length >= 2,
    { timeoutMs: 180_000, intervalMs: 1000 },
  );
  console.log(await env.cluster.kubectl(['get', 'backuprepositories,backuppolicies,backups', '-n', 'tenants']));
  console.log(
    await env.cluster.kubectl([
      'get',
      'backups',
      '-n',
      'tenants',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}: {.status.objects}{"\\n"}{range .status.repositories[*]}  {.role} {.repository}: {.state}{"\\n"}{end}{end}',
    ]),
  );

  step('a RestoreRequest: the latest backup into a new database acme_qa, anonymised afterwards');
  await env.apply([
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name: 'acme-qa', namespace: 'tenants' },
      spec: {
        from: { policy: 'demo', source: 'acme-db' },
        target: { postgres: { connectionSecret: { name: 'pg-main' }, database: 'acme_qa' } },
        postRestoreScript: 'anonymise',
        requestedBy: 'admin',
      },
    },
  ]);
  await waitUntil(
    'the restore',
    async () => ['Succeeded', 'Failed'].includes(await jsonpath('restorerequest/acme-qa', '{.status.phase}')),
    {
      timeoutMs: 180_000,
      intervalMs: 1000,
    },
  );
  console.log(await env.cluster.kubectl(['get', 'restorerequests', '-n', 'tenants']));
  console.log('restored:', await jsonpath('restorerequest/acme-qa', '{.status.restored}'));
  console.log('expected:', await jsonpath('restorerequest/acme-qa', '{.status.expected}'));
  console.log(
    'acme_qa.customers:',
    (await postgres.psql("select count(*) || ' rows, e.g. ' || min(email) from customers", 'acme_qa')).trim(),
  );

  step('verification: a restore drill onto a second PostgreSQL server, and an audit after 25 new rows');
  const drillServer = await startPostgres(workDir.path, { name: 'drill-server' });
  await env.apply([
    secretObject('tenants', 'pg-drill', {
      host: drillServer.host,
      port: String(drillServer.port),
      username: drillServer.user,
      password: drillServer.password,
    }),
  ]);
  await postgres.psql(
    "insert into customers (email) select 'late' || g || '@acme.example' from generate_series(1, 25) g",
    'acme',
  );
  const verification = {
    restoreDrill: { every: '1m', postgres: { connectionSecret: { name: 'pg-drill' } } },
    audit: { every: '1m' },
  };
  console.log(stringify({ spec: { verification } }));
  await env.cluster.kubectl([
    'patch',
    'backuppolicy',
    'demo',
    '-n',
    'tenants',
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { verification } }),
  ]);
  const sourceStatus = '{.status.sources[?(@.name=="acme-db")]';
  await waitUntil(
    'a drill and an audit',
    async () =>
      Boolean(await jsonpath('backuppolicy/demo', `${sourceStatus}.lastDrill.result}`)) &&
      Boolean(await jsonpath('backuppolicy/demo', `${sourceStatus}.lastAudit.result}`)),
    { timeoutMs: 300_000, intervalMs: 1000 },
  );
  console.log('last drill:', await jsonpath('backuppolicy/demo', `${sourceStatus}.lastDrill}`));
  console.log('last audit:', await jsonpath('backuppolicy/demo', `${sourceStatus}.lastAudit}`));

  step('what Prometheus measured, through PromQL');
  const promql = async (expr: string) => {
    await waitUntil(`Prometheus has ${expr}`, async () => (await prometheus.query(expr)).length > 0, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    for (const { metric, value } of await prometheus.query(expr))
      console.log(
        `  ${Object.entries(metric)
          .filter(([k]) => ['namespace', 'policy', 'source'].includes(k))
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}: ${Number(value[1]).toFixed(0)} s`,
      );
  };
  for (const [what, expr] of [
    ['RPO now (seconds since the last successful backup)', 'tidemark_source_rpo_seconds{namespace="tenants"}'],
    ['RPO target', 'tidemark_source_rpo_target_seconds{namespace="tenants"}'],
    ['RTO the last restore achieved', 'tidemark_restore_last_rto_seconds{namespace="tenants"}'],
    ['RTO target', 'tidemark_source_rto_target_seconds{namespace="tenants"}'],
  ] as const) {
    console.log(`${what}: ${expr}`);
    await promql(expr);
  }

  step('kubectl tidemark status -n tenants (the plugin, found by kubectl on PATH)');
  const pluginDir = installKubectlPlugin(join(workDir.path, 'plugins'));
  const status = await kubectlWithPlugins(pluginDir, ['tidemark', 'status', '-n', 'tenants'], {
    KUBECONFIG: env.cluster.kubeconfigPath,
    HOME: workDir.path,
  });
  console.log(status.stdout || status.stderr);

  const plugin = (args: string[]) =>
    kubectlWithPlugins(pluginDir, ['tidemark', ...args], {
      KUBECONFIG: env.cluster.kubeconfigPath,
      HOME: workDir.path,
    });
  step("kubectl tidemark report -n tenants (today's BackupReport)");
  const report = await plugin(['report', 'demo', '-n', 'tenants']);
  console.log(report.stdout || report.stderr);

  step('kubectl tidemark export: the latest backup as CSV files in a ZIP, behind a link that expires in 1 h');
  const latest = (await jsonpath('backuppolicy/demo', `${sourceStatus}.lastSuccessfulBackup}`)).trim();
  const exported = await plugin(['export', latest, '-n', 'tenants', '--expires-after', '1h']);
  console.log(exported.stderr.trim());
  const link = exported.stdout.trim();
  if (link) {
    const zip = Buffer.from(await (await fetch(link)).arrayBuffer());
    console.log(`downloaded ${zip.length} bytes from ${new URL(link).origin}${new URL(link).pathname}`);
  }

  step('kubectl get backuppolicies,backups,restorerequests,backuprepositories -A');
  console.log(await env.cluster.kubectl(['get', 'backuppolicies,backups,restorerequests,backuprepositories', '-A']));

  step('a manifest with a mistake is refused at apply time, naming the field');
  await env
    .apply([
      {
        ...policy,
        metadata: { name: 'broken', namespace: 'tenants' },
        spec: { ...policy.spec, schedule: { full: { cron: '0 2 * *' } } },
      },
    ])
    .then(
      () => console.log('unexpectedly accepted'),
      (error: Error) => console.log(error.message.replace(/^.*?(The BackupPolicy)/s, '$1')),
    );

  if (keep) {
    step(
      `running; in another shell: export KUBECONFIG=${env.cluster.kubeconfigPath} PATH=${pluginDir}:$PATH; alias kubectl=${goTool('kubectl')}`,
    );
    console.log(`Prometheus: ${prometheus.url}`);
    console.log(`operator log: ${join(workDir.path, 'operator.log')}. Ctrl-C stops everything.`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
} finally {
  step('stopping');
  await prometheusServer?.stop();
  await env.stop();
  workDir.remove();
}
