// Issue 11, findings 3 and 4, on the real control plane with the operator running. The tenants
// namespace enforces Pod Security `restricted`, so every agent pod Tidemark creates (probe, backup,
// replicate, catalog, restore, forget, export, audit) must be admitted by the API server's Pod Security admission
// when the Job controller creates it. Agent pods run as the namespace's tidemark-agent
// ServiceAccount with deploy/agent-rbac.yaml: impersonating it, nothing can change a RestoreRequest's
// status or approvals. And the four-eyes race: status forged (as cluster admin) to list the
// attacker's group before the operator wrote it, the attacker's approval passes admission but the
// operator never counts it, because it checks the approval's recorded groups against the policy.
// SPEC R-RESTORE, R-BACKUP ("least privilege").
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { AGENT_TASKS } from '../../src/agent/tasks/names.ts';
import type { Backup, BackupExport, BackupRepository, RestoreRequest } from '../../src/api/kinds.ts';
import { approveAs, installFourEyes, kubectlAs } from '../harness/four-eyes.ts';
import { type ManagedProcess, waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

/** The requester, a colleague outside the approver group (the attacker), and an on-call approver. */
const A = { user: 'dev@acme.example', groups: ['developers'] };
const B = { user: 'colleague@acme.example', groups: ['developers'] };
const C = { user: 'oncall@acme.example', groups: ['platform-oncall'] };

const workDir = makeWorkDir('least-privilege');
let env: TidemarkEnvironment;
let namespace: string;
let operator: ManagedProcess;
/** The task of every agent pod the API server admitted, seen by a watch on the namespace's pods. */
const admitted = new Set<string>();
/** The tasks whose pods got a ServiceAccount token volume (added by the API server unless automount is off). */
const withToken = new Set<string>();
let stopWatch: AbortController | undefined;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true });
  namespace = env.namespace;
  // Before any pod exists: enforce, not just warn.
  await env.cluster.kubectl([
    'label',
    'namespace',
    namespace,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/enforce-version=latest',
  ]);
  await env.cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy/agent-rbac.yaml')]);
  await installFourEyes(env.cluster, namespace, [A, B, C]);
  const documents = join(env.kubelet.claimDir(namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 3; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(500));
  await env.apply([
    ...['documents', 'documents-copy'].map((name) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    })),
    volumePolicy(
      namespace,
      'docs',
      { full: { every: '1h' }, suspend: true },
      {
        replicas: [{ repository: 'replica', region: 'westeurope' }],
        allowedRegions: ['us-east-1', 'westeurope'],
        restore: {
          approval: { required: 1, approverGroups: ['platform-oncall'] },
          targets: [{ volume: { claimNames: ['documents-copy'] } }],
        },
        verification: { audit: { every: '10s' }, restoreDrill: { every: '30s' } },
      },
    ),
  ]);
  stopWatch = await new k8s.Watch(env.cluster.kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (_type, pod: k8s.V1Pod) => {
      const task = pod.metadata?.labels?.['tidemark.dev/task'];
      if (!task) return;
      admitted.add(task);
      const token = (pod.spec?.volumes ?? []).some((v) => v.projected?.sources?.some((p) => p.serviceAccountToken));
      if (token) withToken.add(task);
    },
    () => undefined,
  );
  operator = env.startOperator('operator');
});

after(async () => {
  stopWatch?.abort();
  await env?.stop();
  workDir.remove();
});

const kubectl = (args: string[], input?: string) => env.cluster.kubectl(args, input);

async function waitFor<T>(what: string, read: () => Promise<T | undefined>, done: (t: T) => boolean): Promise<T> {
  let last: T | undefined;
  await waitUntil(
    what,
    async () => {
      last = await read();
      return last !== undefined && done(last);
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last ${JSON.stringify(last)}`);
  });
  return last as T;
}

const restoreOf = (name: string) => () => env.get<RestoreRequest>('restorerequests', name);

describe('the agent ServiceAccount and the four-eyes race', () => {
  const agent = { user: 'system:serviceaccount:tenants:tidemark-agent', groups: [] as string[] };
  const name = 'forged';

  before(async () => {
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'Backup',
        metadata: { name: 'docs-now', namespace },
        spec: { policy: 'docs', source: 'documents', type: 'full' },
      },
    ]);
    await waitFor(
      'Backup docs-now Succeeded on the primary and the replica',
      () => env.get<Backup>('backups', 'docs-now'),
      (b) =>
        b.status?.phase === 'Failed' ||
        (b.status?.phase === 'Succeeded' && (b.status.repositories ?? []).every((r) => r.state === 'Succeeded')),
    );
    assert.equal((await env.read<Backup>('backups', 'docs-now')).status?.phase, 'Succeeded');
    // The race, made deterministic: no operator while status is forged and the attacker approves.
    await operator.stop();
    await kubectlAs(
      env.cluster,
      A,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'RestoreRequest',
        metadata: { name, namespace },
        spec: {
          from: { backupName: 'docs-now' },
          target: { volume: { claimName: 'documents-copy' } },
          requestedBy: A.user,
        },
      }),
    );
  });

  test('impersonating the agent ServiceAccount, nothing changes a RestoreRequest status or approvals', async () => {
    const as = (args: string[]) => kubectlAs(env.cluster, agent, ['-n', namespace, ...args]);
    const status = { status: { phase: 'Approved', approverGroups: ['developers'], approvedBy: [B.user] } };
    await assert.rejects(
      as(['patch', 'restorerequest', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]),
      /cannot (get|patch) resource "restorerequests\/status"/,
    );
    await assert.rejects(
      as([
        'patch',
        'backup',
        'docs-now',
        '--subresource=status',
        '--type=merge',
        '-p',
        '{"status":{"phase":"Failed"}}',
      ]),
      /cannot (get|patch) resource "backups\/status"/,
    );
    const approvals = [{ op: 'add', path: '/spec/approvals', value: [{ user: B.user, groups: ['platform-oncall'] }] }];
    await assert.rejects(
      as(['patch', 'restorerequest', name, '--type=json', '-p', JSON.stringify(approvals)]),
      /cannot (get|patch) resource "restorerequests"/,
    );
    assert.equal((await env.read<RestoreRequest>('restorerequests', name)).status, undefined);
  });

  test('status forged to list the attacker group: the approval passes admission, the operator never counts it', async () => {
    // As cluster admin, before the operator wrote the rule: the attacker's group is listed.
    await kubectl([
      'patch',
      '-n',
      namespace,
      'restorerequest',
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'PendingApproval', approverGroups: ['developers'], approverUsers: [] } }),
    ]);
    await approveAs(env.cluster, B, namespace, name, [{ user: B.user }]);
    assert.deepEqual((await env.read<RestoreRequest>('restorerequests', name)).spec.approvals, [
      { user: B.user, groups: ['developers'] },
    ]);

    operator = env.startOperator('operator-after-race');
    const pending = await waitFor('the operator rewrote the approver list from the policy', restoreOf(name), (r) =>
      (r.status?.approverGroups ?? []).includes('platform-oncall'),
    );
    assert.equal(pending.status?.phase, 'PendingApproval', JSON.stringify(pending.status));
    assert.equal(pending.status?.approvalSummary, '0/1');
    assert.deepEqual(pending.status?.approvedBy, []);
    assert.deepEqual(pending.status?.approverGroups, ['platform-oncall']);
    assert.equal(pending.status?.jobName, undefined, 'no restore Job');
  });

  test("the approver in the policy's group approves, and only that approval counts", async () => {
    await approveAs(env.cluster, C, namespace, name, [{ user: C.user }]);
    const done = await waitFor('the restore ends', restoreOf(name), (r) =>
      ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''),
    );
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status));
    assert.deepEqual(done.status?.approvedBy, [C.user]);
  });
});

describe('Pod Security restricted on every agent pod', () => {
  test('the namespace enforces restricted: a pod that is not is refused', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'not-restricted', namespace },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    };
    await assert.rejects(
      kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod)),
      /violates PodSecurity/,
    );
  });

  test('a catalog sync runs its Job (the one agent task with a token) and writes the catalog', async () => {
    await kubectl(['annotate', '-n', namespace, 'backuprepository', 'primary', 'tidemark.dev/sync-requested=now']);
    await waitFor(
      'the sync is handled',
      () => env.get<BackupRepository>('backuprepositories', 'primary'),
      (r) => r.metadata.annotations?.['tidemark.dev/synced'] === 'now',
    );
    const reasons = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=primary',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    assert.match(reasons, /BackupsImported/);
    assert.doesNotMatch(reasons, /SyncFailed/);
  });

  test('a scheduled audit runs its Job (reading the volume, read-only) while the Backup it compares with exists', async () => {
    await waitUntil('an audit pod', async () => admitted.has('audit'), { timeoutMs: 60_000, intervalMs: 500 });
  });

  test('a scheduled restore drill runs its Job into a scratch PVC while the Backup it restores exists', async () => {
    await waitUntil('a drill pod', async () => admitted.has('drill'), { timeoutMs: 90_000, intervalMs: 500 });
  });

  test('an export runs its Job (with a token: it creates the link Secret) and becomes Ready', async () => {
    await env.apply([
      {
        apiVersion: 'tidemark.dev/v1alpha1',
        kind: 'BackupExport',
        metadata: { name: 'docs-export', namespace },
        spec: { backup: 'docs-now', expiresAfter: '1h' },
      },
    ]);
    const ready = await waitFor(
      'the export ends',
      () => env.get<BackupExport>('backupexports', 'docs-export'),
      (e) => ['Ready', 'Failed'].includes(e.status?.phase ?? ''),
    );
    assert.equal(ready.status?.phase, 'Ready', JSON.stringify(ready.status));
  });

  test('deleting the Backup with tidemark.dev/forget=true forgets its snapshots through forget Jobs', async () => {
    // Deletion keeps the snapshots unless asked to forget them.
    await kubectl(['annotate', '-n', namespace, 'backup', 'docs-now', 'tidemark.dev/forget=true']);
    await kubectl(['delete', '-n', namespace, 'backup', 'docs-now', '--wait=false']);
    await waitUntil('Backup docs-now gone', async () => (await env.get<Backup>('backups', 'docs-now')) === undefined, {
      timeoutMs: 120_000,
      intervalMs: 500,
    });
  });

  test('every task had its pods admitted, no Job was refused a pod, and only the catalog and export pods have a token', async () => {
    assert.deepEqual([...admitted].sort(), [...AGENT_TASKS].sort());
    assert.deepEqual(
      [...withToken].sort(),
      ['catalog', 'export'],
      'only the tasks that write an object (the catalog ConfigMap, the link Secret) mount a token',
    );
    const refused = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'reason=FailedCreate',
      '-o',
      'jsonpath={range .items[*]}{.involvedObject.name}: {.message}{"\\n"}{end}',
    ]);
    assert.equal(refused.trim(), '');
  });
});
