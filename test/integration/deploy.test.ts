// deploy/ and charts/tidemark against a real API server: server-side dry-runs validate every object's
// schema and run admission (Pod Security "restricted" on the namespace), the monitoring objects
// against the Prometheus Operator's own CRDs, an operator started with the Deployment's arguments
// answers the probes and the scrape the manifests point at, and the RBAC is exercised by
// impersonating the operator's and the agent's ServiceAccounts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { helm as runHelm } from '../harness/helm.ts';
import { dashboard, monitoringDir } from '../harness/monitoring.ts';
import { startProcess, waitUntil } from '../harness/process.ts';
import { goTool, repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
type Obj = Record<string, any>;
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

const namespace = 'tidemark-system';
const operatorUser = `system:serviceaccount:${namespace}:tidemark-operator`;
const chart = join(repoRoot, 'charts', 'tidemark');
/** Renders the chart as on a cluster with the Prometheus Operator (its CRDs serve monitoring.coreos.com/v1). */
const withPrometheusOperator = ['--api-versions', 'monitoring.coreos.com/v1'];
const workDir = makeWorkDir('deploy');
let cluster: Cluster;

before(async () => {
  cluster = await startCluster(workDir.path);
  // The real namespace, with its Pod Security labels, so that the dry-runs below are admitted against it.
  await cluster.kubectl(['apply', '--server-side', '-f', join(repoRoot, 'deploy', 'namespace.yaml')]);
  // The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs (scripts/generate-monitoring-crds.sh).
  await cluster.kubectl(['apply', '--server-side', '-f', join(repoRoot, 'test', 'integration', 'monitoring', 'crds')]);
  await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd/servicemonitors.monitoring.coreos.com',
    'crd/prometheusrules.monitoring.coreos.com',
  ]);
});

after(async () => {
  await cluster?.stop();
  workDir.remove();
});

describe('deploy/ (kustomize)', () => {
  let objects: Obj[];
  before(async () => {
    objects = parse(await kubectlOut(['kustomize', join(repoRoot, 'deploy')]));
  });

  test('is accepted by the API server (server-side dry-run) without Pod Security warnings', async () => {
    await dryRunApply(objects);
  });

  test('contains the CRDs, the restricted namespace and a two-replica leader-elected operator', () => {
    assert.deepEqual(
      names(objects, 'CustomResourceDefinition'),
      ['backupexports', 'backuppolicies', 'backupreports', 'backuprepositories', 'backups', 'restorerequests'].map(
        (k) => `${k}.tidemark.dev`,
      ),
    );
    const ns = only(objects, 'Namespace');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
    const deployment = only(objects, 'Deployment');
    assert.equal(deployment.metadata.namespace, namespace);
    assert.equal(deployment.spec.replicas, 2);
    assert.deepEqual(deployment.spec.template.spec.containers[0].args, [
      'operator',
      '--metrics-port=8080',
      '--leader-elect',
    ]);
  });

  test('every container runs as non-root, read-only, without capabilities', () => {
    assertRestricted(only(objects, 'Deployment'));
  });

  test("ClusterRoles grant no wildcards, and nothing on Secrets but the agent's create", () => {
    assertLeastPrivilege(objects);
  });

  describe('deploy/monitoring', () => {
    let monitoring: Obj[];
    before(async () => {
      monitoring = parse(await kubectlOut(['kustomize', join(repoRoot, 'deploy', 'monitoring')]));
    });

    test('is accepted by the API server with the Prometheus Operator CRDs (server-side dry-run)', async () => {
      await dryRunApply(monitoring);
    });

    test('scrapes the metrics Service by its port name, keeping the metrics own namespace label', () => {
      assertScrapes(only(monitoring, 'ServiceMonitor'), only(objects, 'Service'));
    });

    test("holds the rules, with the operator's job named after the metrics Service", () => {
      const rule = only(monitoring, 'PrometheusRule');
      assert.deepEqual(
        rule.spec,
        (parseYaml(readFileSync(join(monitoringDir, 'prometheusrule.yaml'), 'utf8')) as Obj).spec,
      );
      assertJobIsService(rule, only(objects, 'Service'));
    });

    test('holds the dashboard in a ConfigMap for the Grafana sidecar', () => {
      assertDashboard(only(monitoring, 'ConfigMap'));
    });
  });
});

describe('charts/tidemark (helm)', () => {
  let objects: Obj[];
  before(async () => {
    objects = parse(
      await helm([
        'template',
        'tidemark',
        chart,
        '--namespace',
        namespace,
        '--include-crds',
        ...withPrometheusOperator,
      ]),
    );
  });

  test('passes helm lint', async () => {
    await helm(['lint', chart]);
  });

  test('is accepted by the API server (server-side dry-run) without Pod Security warnings', async () => {
    await dryRunApply(objects);
  });

  test('every container runs as non-root, read-only, without capabilities', () => {
    assertRestricted(only(objects, 'Deployment'));
  });

  test("ClusterRoles grant no wildcards, and nothing on Secrets but the agent's create", () => {
    assertLeastPrivilege(objects);
  });

  test('renders the same objects, rules and pod spec as deploy/ and deploy/monitoring', async () => {
    const kustomized = [
      ...parse(await kubectlOut(['kustomize', join(repoRoot, 'deploy')])),
      ...parse(await kubectlOut(['kustomize', join(repoRoot, 'deploy', 'monitoring')])),
    ];
    const key = (o: Obj) => `${o.kind}/${o.metadata.name}`;
    const keys = (list: Obj[]) =>
      list
        .filter((o) => o.kind !== 'Namespace')
        .map(key)
        .sort();
    assert.deepEqual(keys(objects), keys(kustomized));
    for (const kind of ['CustomResourceDefinition', 'ClusterRole', 'Role', 'PrometheusRule']) {
      for (const o of objects.filter((x) => x.kind === kind)) {
        const twin = kustomized.find((x) => key(x) === key(o));
        assert.deepEqual(o.spec ?? o.rules, twin?.spec ?? twin?.rules, key(o));
      }
    }
    assert.deepEqual(only(objects, 'Deployment').spec.template.spec, only(kustomized, 'Deployment').spec.template.spec);
  });

  test('renders the ServiceMonitor and the alerts by default where monitoring.coreos.com/v1 is served, and not elsewhere', async () => {
    assertScrapes(only(objects, 'ServiceMonitor'), only(objects, 'Service'));
    assertJobIsService(only(objects, 'PrometheusRule'), only(objects, 'Service'));
    const plain = parse(await helm(['template', 'tidemark', chart, '-n', namespace]));
    assert.deepEqual([...names(plain, 'ServiceMonitor'), ...names(plain, 'PrometheusRule')], []);
    const off = parse(
      await helm([
        'template',
        'tidemark',
        chart,
        '-n',
        namespace,
        ...withPrometheusOperator,
        '--set',
        'metrics.serviceMonitor.enabled=false,metrics.prometheusRule.enabled=false,metrics.dashboard.enabled=false',
      ]),
    );
    assert.deepEqual(
      off.filter((o) => ['ServiceMonitor', 'PrometheusRule', 'ConfigMap'].includes(o.kind)),
      [],
    );
  });

  test('renders the dashboard ConfigMap by default, for the Grafana sidecar', () => {
    assertDashboard(only(objects, 'ConfigMap'));
  });

  test("names the operator's job after the metrics Service for any release name, or as set", async () => {
    const prod = parse(await helm(['template', 'prod', chart, '-n', namespace, ...withPrometheusOperator]));
    assertJobIsService(only(prod, 'PrometheusRule'), only(prod, 'Service'));
    const own = parse(
      await helm([
        'template',
        'prod',
        chart,
        '-n',
        namespace,
        ...withPrometheusOperator,
        '--set',
        'metrics.prometheusRule.job=tidemark',
      ]),
    );
    assert.deepEqual(operatorJobs(only(own, 'PrometheusRule')), ['tidemark']);
  });

  test('refuses several replicas without leader election', async () => {
    await assert.rejects(
      helm(['template', 'tidemark', chart, '--set', 'leaderElection.enabled=false']),
      /replicas > 1 needs leaderElection.enabled=true/,
    );
  });
});

// The operator as the Deployment starts it (its arguments and plain environment), on this host: the
// liveness and readiness probes' paths and ports, and the port the metrics Service and the
// ServiceMonitor scrape, must answer 200. The ports are the manifests' own, so the two run one after
// the other.
describe('the probes and the scrape target answer', () => {
  const renderings: [string, () => Promise<Obj[]>][] = [
    ['deploy/', async () => parse(await kubectlOut(['kustomize', join(repoRoot, 'deploy')]))],
    ['charts/tidemark', async () => parse(await helm(['template', 'tidemark', chart, '-n', namespace]))],
  ];
  for (const [name, render] of renderings) {
    test(`${name}: an operator started with the Deployment's arguments answers /healthz, /readyz and /metrics`, async () => {
      const objects = await render();
      const container: Obj = only(objects, 'Deployment').spec.template.spec.containers[0];
      const portNumber = (port: string | number): number => {
        if (typeof port === 'number') return port;
        const found = container.ports.find((p: Obj) => p.name === port);
        assert.ok(found, `container port ${port}`);
        return found.containerPort;
      };
      const endpoints = [
        { what: 'liveness probe', ...container.livenessProbe.httpGet },
        { what: 'readiness probe', ...container.readinessProbe.httpGet },
        { what: 'metrics Service', path: '/metrics', port: only(objects, 'Service').spec.ports[0].targetPort },
      ];
      const podName = `probe-${name.replace(/\W/g, '')}`;
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        KUBECONFIG: cluster.kubeconfigPath,
        POD_NAME: podName,
        POD_NAMESPACE: namespace,
      };
      for (const variable of container.env as Obj[])
        if (variable.value !== undefined) env[variable.name] = variable.value;
      const operator = startProcess(
        podName,
        process.execPath,
        ['--import', import.meta.resolve('tsx'), join(repoRoot, 'src', 'cli', 'main.ts'), ...container.args],
        { env, logFile: join(workDir.path, `${podName}.log`) },
      );
      try {
        for (const { what, path, port } of endpoints) {
          const url = `http://127.0.0.1:${portNumber(port)}${path}`;
          await waitUntil(`${name} ${what}: ${url} answers 200`, async () => (await fetch(url)).status === 200, {
            timeoutMs: 30_000,
            process: operator,
          });
        }
      } finally {
        await operator.stop();
      }
    });
  }
});

describe('RBAC on the real API server', () => {
  /** `resource` may name a subresource: `backups.tidemark.dev/status`. */
  const can = async (user: string, verb: string, resource: string, ns: string) => {
    const [name = '', subresource] = resource.split('/');
    const args = ['auth', 'can-i', verb, name, '-n', ns, `--as=${user}`];
    if (subresource) args.push(`--subresource=${subresource}`);
    const { stdout } = await run(goTool('kubectl'), [`--kubeconfig=${cluster.kubeconfigPath}`, ...args]);
    return stdout.trim() === 'yes';
  };

  before(async () => {
    await cluster.kubectl(['apply', '--server-side', '-k', join(repoRoot, 'deploy')]);
    for (const ns of ['tenant-a', 'tenant-b']) await cluster.kubectl(['create', 'namespace', ns]);
  });

  test('the operator can set up an agent ServiceAccount bound to tidemark-agent, and bind nothing else', async () => {
    const asOperator = (args: string[]) => cluster.kubectl([`--as=${operatorUser}`, '-n', 'tenant-a', ...args]);
    await asOperator(['create', 'serviceaccount', 'tidemark-agent']);
    await asOperator([
      'create',
      'rolebinding',
      'tidemark-agent',
      '--clusterrole=tidemark-agent',
      '--serviceaccount=tenant-a:tidemark-agent',
    ]);
    // cluster-admin, not admin: aggregated roles are empty here (no clusterrole-aggregation controller).
    await assert.rejects(
      asOperator(['create', 'rolebinding', 'escalate', '--clusterrole=cluster-admin', '--serviceaccount=tenant-a:x']),
      /forbidden/,
    );
  });

  test('the operator holds no access to Secrets, and Leases only in its namespace', async () => {
    for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'])
      assert.equal(await can(operatorUser, verb, 'secrets', 'tenant-a'), false, verb);
    assert.equal(await can(operatorUser, 'update', 'leases.coordination.k8s.io', namespace), true);
    assert.equal(await can(operatorUser, 'update', 'leases.coordination.k8s.io', 'tenant-a'), false);
    assert.equal(await can(operatorUser, 'delete', 'pods', 'tenant-a'), false);
  });

  test('the agent writes no status and no Tidemark object, and reads no Secret', async () => {
    const agent = 'system:serviceaccount:tenant-a:tidemark-agent';
    for (const resource of ['backups.tidemark.dev/status', 'restorerequests.tidemark.dev/status'])
      for (const verb of ['get', 'patch', 'update'])
        assert.equal(await can(agent, verb, resource, 'tenant-a'), false, `${verb} ${resource}`);
    for (const verb of ['patch', 'update'])
      assert.equal(await can(agent, verb, 'restorerequests.tidemark.dev', 'tenant-a'), false, verb);
    assert.equal(await can(agent, 'get', 'secrets', 'tenant-a'), false);
  });

  // `kubectl auth can-i --list`, minus what every authenticated user may do (discovery, self
  // reviews): the exact permission set of each identity. Any verb added to a role fails here
  // until this list changes with it.
  describe('the exact permissions of each identity (auth can-i --list)', () => {
    /** As kubectl prints it: `backups.tidemark.dev/status`. */
    const tidemark = (r: string) => {
      const [resource, subresource] = r.split('/');
      return `${resource}.tidemark.dev${subresource ? `/${subresource}` : ''}`;
    };
    let baseline: Set<string>;
    const list = async (ns: string, user: string, groups: string[] = []) => {
      const args = ['auth', 'can-i', '--list', '--no-headers', '-n', ns, `--as=${user}`];
      for (const g of groups) args.push(`--as-group=${g}`);
      const { stdout } = await run(goTool('kubectl'), [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], '', true);
      return stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/).join(' '))
        .filter((line) => line !== '');
    };
    const granted = async (ns: string, user: string, groups: string[] = []) =>
      (await list(ns, user, groups)).filter((line) => !baseline.has(line)).sort();

    before(async () => {
      // Granted to every user, and to every ServiceAccount (e.g. service account issuer discovery).
      baseline = new Set([
        ...(await list('tenant-a', 'nobody@acme.example', ['developers'])),
        ...(await list('tenant-a', 'system:serviceaccount:tenant-a:nobody')),
      ]);
      await cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [
            ['tidemark-restore-requester', { kind: 'User', name: 'dev@acme.example' }],
            ['tidemark-restore-approver', { kind: 'Group', name: 'platform-oncall' }],
          ].map(([role, subject]) => ({
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: role, namespace: 'tenant-a' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', ...(subject as object) }],
          })),
        }),
      );
    });

    test('the operator, in a tenant namespace and in its own', async () => {
      const everywhere = [
        `${tidemark('backupexports')} [] [] [get list watch patch update]`,
        `${tidemark('backupexports/finalizers')} [] [] [update]`,
        `${tidemark('backupexports/status')} [] [] [get patch update]`,
        `${tidemark('backuppolicies')} [] [] [get list watch patch update]`,
        `${tidemark('backuppolicies/finalizers')} [] [] [update]`,
        `${tidemark('backuppolicies/status')} [] [] [get patch update]`,
        `${tidemark('backupreports')} [] [] [get list watch create update delete]`,
        `${tidemark('backupreports/status')} [] [] [get patch update]`,
        `${tidemark('backuprepositories')} [] [] [get list watch patch update]`,
        `${tidemark('backuprepositories/finalizers')} [] [] [update]`,
        `${tidemark('backuprepositories/status')} [] [] [get patch update]`,
        `${tidemark('backups')} [] [] [get list watch patch update create delete]`,
        `${tidemark('backups/finalizers')} [] [] [update]`,
        `${tidemark('backups/status')} [] [] [get patch update]`,
        `${tidemark('restorerequests')} [] [] [get list watch patch update]`,
        `${tidemark('restorerequests/finalizers')} [] [] [update]`,
        `${tidemark('restorerequests/status')} [] [] [get patch update]`,
        'clusterroles.rbac.authorization.k8s.io [] [tidemark-agent] [bind]',
        'configmaps [] [] [get]',
        'events [] [] [create patch]',
        'events.events.k8s.io [] [] [create patch]',
        'jobs.batch [] [] [get list watch create delete]',
        'namespaces [] [] [get]',
        'persistentvolumeclaims [] [] [get list watch create delete]',
        'pods [] [] [get list watch]',
        'rolebindings.rbac.authorization.k8s.io [] [] [get create]',
        'serviceaccounts [] [] [get create]',
        'volumesnapshots.snapshot.storage.k8s.io [] [] [get list create delete]',
      ];
      assert.deepEqual(await granted('tenant-a', operatorUser), [...everywhere].sort());
      assert.deepEqual(
        await granted(namespace, operatorUser),
        [...everywhere, 'leases.coordination.k8s.io [] [] [get create update]'].sort(),
      );
    });

    test('the agent: the catalog ConfigMap and new export link Secrets in its own namespace, nothing else', async () => {
      const agent = (ns: string) => `system:serviceaccount:${ns}:tidemark-agent`;
      assert.deepEqual(await granted('tenant-a', agent('tenant-a')), [
        'configmaps [] [] [get create update]',
        'secrets [] [] [create]',
      ]);
      assert.deepEqual(await granted('tenant-b', agent('tenant-a')), []);
    });

    test('a RestoreRequest creator and an approver, in their namespace only', async () => {
      const reads = [
        `${tidemark('backuppolicies')} [] [] [get list watch]`,
        `${tidemark('backupreports')} [] [] [get list watch]`,
        `${tidemark('backups')} [] [] [get list watch]`,
      ];
      assert.deepEqual(
        await granted('tenant-a', 'dev@acme.example', ['developers']),
        [...reads, `${tidemark('restorerequests')} [] [] [get list watch create]`].sort(),
      );
      assert.deepEqual(
        await granted('tenant-a', 'oncall@acme.example', ['platform-oncall']),
        [...reads, `${tidemark('restorerequests')} [] [] [get list watch patch]`].sort(),
      );
      assert.deepEqual(await granted('tenant-b', 'dev@acme.example', ['developers']), []);
      assert.deepEqual(await granted('tenant-b', 'oncall@acme.example', ['platform-oncall']), []);
    });
  });
});

/** Server-side dry-run apply; PodSecurity admission only warns for Deployments, so warnings fail too. */
async function dryRunApply(objects: Obj[]): Promise<void> {
  const stream = objects.map((o) => JSON.stringify(o)).join('\n');
  const { stderr } = await run(
    goTool('kubectl'),
    [
      `--kubeconfig=${cluster.kubeconfigPath}`,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--dry-run=server',
      '-f',
      '-',
    ],
    stream,
    true,
  );
  assert.doesNotMatch(stderr, /PodSecurity|Warning/, stderr);
}

function assertRestricted(deployment: Obj): void {
  const pod = deployment.spec.template.spec;
  const containers: Obj[] = [...(pod.initContainers ?? []), ...pod.containers];
  assert.ok(containers.length > 0);
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const runAsNonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
    const runAsUser = sc.runAsUser ?? pod.securityContext?.runAsUser;
    assert.equal(runAsNonRoot, true, `${c.name}: runAsNonRoot`);
    assert.ok(runAsUser === undefined || runAsUser > 0, `${c.name}: runAsUser ${runAsUser}`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
    assert.ok(sc.capabilities?.drop?.includes('ALL'), `${c.name}: capabilities.drop ALL`);
    assert.ok(!sc.capabilities?.add?.length, `${c.name}: capabilities.add`);
  }
}

function assertLeastPrivilege(objects: Obj[]): void {
  const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  assert.ok(roles.length >= 2);
  for (const role of roles) {
    for (const rule of role.rules as Rule[]) {
      const where = `${role.kind} ${role.metadata.name}: ${JSON.stringify(rule)}`;
      assert.ok(!rule.verbs.includes('*'), `wildcard verb in ${where}`);
      assert.ok(!rule.resources?.includes('*'), `wildcard resource in ${where}`);
      assert.ok(!rule.apiGroups?.includes('*'), `wildcard apiGroup in ${where}`);
      const secrets = rule.apiGroups?.includes('') && rule.resources?.includes('secrets');
      // One exception: the agent creates an export's link Secret; it can neither read nor change any.
      const agentCreatesLinks =
        String(role.metadata.name).endsWith('agent') && rule.resources?.length === 1 && rule.verbs.join() === 'create';
      assert.ok(!secrets || agentCreatesLinks, `Secrets in ${where}`);
    }
  }
}

function assertScrapes(monitor: Obj, service: Obj): void {
  assert.equal(monitor.kind, 'ServiceMonitor');
  for (const [label, value] of Object.entries(monitor.spec.selector.matchLabels))
    assert.equal(service.metadata.labels[label], value, `Service label ${label}`);
  const port = service.spec.ports.find((p: Obj) => p.name === monitor.spec.endpoints[0].port);
  assert.equal(port?.port, 8080);
  assert.equal(monitor.spec.endpoints[0].path, '/metrics');
  // Else Prometheus renames the metrics' (tenant) namespace label to exported_namespace.
  assert.equal(monitor.spec.endpoints[0].honorLabels, true);
}

/** The `job` label values the operator-health alerts select. */
function operatorJobs(rule: Obj): string[] {
  const exprs: string[] = rule.spec.groups.flatMap((g: Obj) => g.rules.map((r: Obj) => r.expr));
  return [...new Set(exprs.flatMap((e) => [...e.matchAll(/job="([^"]*)"/g)].map((m) => m[1] ?? '')))];
}

/** The Prometheus Operator names a ServiceMonitor's job after the Service: the alerts must select that. */
function assertJobIsService(rule: Obj, service: Obj): void {
  assert.deepEqual(operatorJobs(rule), [service.metadata.name]);
}

function assertDashboard(configMap: Obj): void {
  assert.equal(configMap.metadata.labels.grafana_dashboard, '1');
  assert.deepEqual(JSON.parse(configMap.data['tidemark.json']), dashboard());
}

function parse(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

function only(objects: Obj[], kind: string): Obj {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0] as Obj;
}

function names(objects: Obj[], kind: string): string[] {
  return objects
    .filter((o) => o.kind === kind)
    .map((o) => o.metadata.name)
    .sort();
}

async function kubectlOut(args: string[]): Promise<string> {
  return (await run(goTool('kubectl'), args, undefined, true)).stdout;
}

function helm(args: string[]): Promise<string> {
  return runHelm(args, workDir.path);
}

/** Runs a tool; with `check`, a non-zero exit rejects with its stderr. */
function run(
  command: string,
  args: string[],
  input?: string,
  check = false,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (check && code !== 0) reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr.trim()}`));
      else resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
