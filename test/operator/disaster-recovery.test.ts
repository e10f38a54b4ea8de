// Restores that wait, and disaster recovery through the API, on the real control plane. RestoreRequests
// created before their Backup wait (phase Pending, Resolved False) and restore once it succeeded.
// Then the policy and every Backup are deleted (the snapshots stay in the repository), and
// RestoreRequests name the repository directly: a snapshot id, and a source identity + latest (the
// agent resolves both from the repository's own catalog); with no policy left, one approval from
// tidemark:restore-approvers is needed. Finally a sync request on the BackupRepository re-imports the
// Backups (`kubectl get backups` repopulated), without re-running them.
// SPEC R-RESTORE; issue 8 findings 8 (restore half) and 10.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup, RestoreRequest } from '../../src/api/kinds.ts';
import { backupTree } from '../../src/repository/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type ProcessKubelet, startProcessKubelet } from '../harness/kubelet/kubelet.ts';
import { type ManagedProcess, waitUntil } from '../harness/process.ts';
import {
  AGENT_IMAGE,
  PASSPHRASE,
  startTidemarkEnvironment,
  type TidemarkEnvironment,
  volumePolicy,
} from '../harness/tidemark.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('disaster-recovery');
let env: TidemarkEnvironment;
let api: k8s.CustomObjectsApi;
let namespace: string;
/** The kubelet that replaces the environment's one after it was stopped to hold a Backup in Running. */
let secondKubelet: ProcessKubelet | undefined;
let operator: ManagedProcess;
const originals = new Map<string, string>();

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  namespace = env.namespace;
  api = env.cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const documents = join(env.kubelet.claimDir(namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 3; i++) {
    const text = `document ${i}\n`.repeat(2000);
    originals.set(`doc-${i}.txt`, text);
    await writeFile(join(documents, `doc-${i}.txt`), text);
  }
  // The agent's ClusterRole as deployed (the catalog task writes a ConfigMap with it).
  await env.cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy/agent-rbac.yaml')]);
  await env.apply(
    ['documents', 'wait-by-name', 'wait-latest', 'wait-running', 'dr-by-id', 'dr-latest'].map((name) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    })),
  );
  operator = env.startOperator('operator');
});

after(async () => {
  await secondKubelet?.stop();
  await env?.stop();
  workDir.remove();
});

const crd = { group: 'tidemark.dev', version: 'v1alpha1' };

async function get<T>(plural: string, name: string): Promise<T | undefined> {
  return (await api.getNamespacedCustomObject({ ...crd, plural, namespace, name }).catch(() => undefined)) as
    | T
    | undefined;
}

async function waitForRestore(name: string, phase: string, timeoutMs = 90_000): Promise<RestoreRequest> {
  let last: RestoreRequest | undefined;
  await waitUntil(
    `RestoreRequest ${name} ${phase}`,
    async () => {
      last = await get<RestoreRequest>('restorerequests', name);
      return last?.status?.phase === phase || last?.status?.phase === 'Failed';
    },
    { timeoutMs, intervalMs: 500 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last status ${JSON.stringify(last?.status)}`);
  });
  assert.equal(last?.status?.phase, phase, `RestoreRequest ${name}: ${JSON.stringify(last?.status)}`);
  return last as RestoreRequest;
}

async function createRestore(name: string, spec: Record<string, unknown>): Promise<void> {
  await api.createNamespacedCustomObject({
    ...crd,
    plural: 'restorerequests',
    namespace,
    body: { apiVersion: 'tidemark.dev/v1alpha1', kind: 'RestoreRequest', metadata: { name, namespace }, spec },
  });
}

async function restoredFiles(claim: string): Promise<Map<string, string>> {
  const dir = join(env.kubelet.claimDir(namespace, claim), 'files');
  const files = new Map<string, string>();
  for (const name of await readdir(dir)) files.set(name, await readFile(join(dir, name), 'utf8'));
  return files;
}

const condition = (r: RestoreRequest | undefined, type: string) => r?.status?.conditions?.find((c) => c.type === type);

let snapshotId = '';
let secondSnapshotId = '';
let foreignSnapshotId = '';

function backupObject(name: string) {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace },
    spec: { policy: 'docs', source: 'documents', type: 'full' },
  };
}

describe('restores that wait for their Backup', () => {
  test('requests created before their Backup (by name, and latest of policy + source) wait in Pending, then restore once it succeeded', async () => {
    await env.apply([
      volumePolicy(
        namespace,
        'docs',
        { full: { every: '1h' }, suspend: true },
        { restore: { targets: [{ volume: { claimNames: ['wait-*'] } }] } },
      ),
    ]);
    await createRestore('wait-by-name', {
      from: { backupName: 'docs-first' },
      target: { volume: { claimName: 'wait-by-name' } },
    });
    await createRestore('wait-latest', {
      from: { policy: 'docs', source: 'documents' },
      target: { volume: { claimName: 'wait-latest' } },
    });
    for (const name of ['wait-by-name', 'wait-latest']) {
      const waiting = await waitForRestore(name, 'Pending', 20_000);
      assert.equal(condition(waiting, 'Resolved')?.status, 'False');
      assert.equal(condition(waiting, 'Resolved')?.reason, 'WaitingForBackup');
      assert.equal(waiting.status?.jobName, undefined);
    }
    assert.match(condition(await get('restorerequests', 'wait-by-name'), 'Resolved')?.message ?? '', /docs-first/);
    // The wait survives an operator restart: the new one is woken by the Backup all the same.
    await operator.stop();
    operator = env.startOperator('operator-2');

    await env.apply([backupObject('docs-first')]);
    for (const name of ['wait-by-name', 'wait-latest']) {
      const done = await waitForRestore(name, 'Succeeded');
      assert.equal(done.status?.backupName, 'docs-first');
      assert.equal(condition(done, 'Resolved')?.status, 'True');
      assert.deepEqual(await restoredFiles(name), originals);
    }
    const backup = await get<Backup>('backups', 'docs-first');
    snapshotId = backup?.status?.snapshotId ?? '';
    assert.match(snapshotId, /^[0-9a-f]{64}$/);
  });

  test('a request naming a Backup that is still Running waits, and restores once the Backup succeeded', async () => {
    // No kubelet: the Backup's Job is created and its pod never starts, so the Backup stays Running.
    await env.kubelet.stop();
    await env.apply([backupObject('docs-second')]);
    await waitUntil(
      'Backup docs-second Running',
      async () => (await get<Backup>('backups', 'docs-second'))?.status?.phase === 'Running',
      { timeoutMs: 20_000 },
    );
    await createRestore('wait-running', {
      from: { backupName: 'docs-second' },
      target: { volume: { claimName: 'wait-running' } },
    });
    const waiting = await waitForRestore('wait-running', 'Pending', 20_000);
    assert.match(condition(waiting, 'Resolved')?.message ?? '', /Backup docs-second \(phase Running\)/);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await get<RestoreRequest>('restorerequests', 'wait-running'))?.status?.phase, 'Pending');

    secondKubelet = await startProcessKubelet(env.cluster.kubeConfig, {
      workDir: join(workDir.path, 'kubelet'),
      nodeName: 'process-kubelet-2',
      imageEntrypoints: {
        [AGENT_IMAGE]: [process.execPath, '--import', import.meta.resolve('tsx'), join(repoRoot, 'src/cli/main.ts')],
      },
      baseEnv: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    const done = await waitForRestore('wait-running', 'Succeeded');
    assert.equal(done.status?.backupName, 'docs-second');
    assert.deepEqual(await restoredFiles('wait-running'), originals);
    secondSnapshotId = (await get<Backup>('backups', 'docs-second'))?.status?.snapshotId ?? '';
    assert.match(secondSnapshotId, /^[0-9a-f]{64}$/);
  });
});

describe('disaster recovery through the API', () => {
  before(async () => {
    assert.ok(snapshotId, 'the first test made the backup');
    // The namespace's history is gone: policy and Backups. The finalizer is removed first so that
    // deleting the objects leaves the snapshots in the repository (as after a lost cluster).
    await env.cluster.kubectl(['delete', 'backuppolicy', 'docs', '-n', namespace]);
    for (const backup of await env.backups()) {
      const name = backup.metadata.name ?? '';
      await env.cluster.kubectl([
        'patch',
        'backup',
        name,
        '-n',
        namespace,
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      ]);
      await env.cluster.kubectl(['delete', 'backup', name, '-n', namespace]);
    }
    await waitUntil('no Backups left', async () => (await env.backups()).length === 0, { timeoutMs: 20_000 });
    // Another namespace's snapshot in the same repository (a shared bucket prefix).
    const elsewhere = join(workDir.path, 'payments-ledger');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, 'ledger.csv'), 'id,amount\n1,100\n');
    const repository = await Repository.open(openStorage(env.primaryUrl, env.s3Env), Buffer.from(PASSPHRASE));
    foreignSnapshotId = (await backupTree(repository, elsewhere, { type: 'full', source: 'payments/ledger/files' })).id;
  });

  /** An approval from a member of the default approver group (no admission policy here checks the group). */
  async function approveAs(name: string, user: string): Promise<void> {
    const approvals = [{ user, groups: ['tidemark:restore-approvers'] }];
    await api.patchNamespacedCustomObject(
      { ...crd, plural: 'restorerequests', namespace, name, body: { spec: { approvals } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  test('(a) repository + snapshot id (a prefix): with no policy left it waits for one approval from tidemark:restore-approvers, then restores the files', async () => {
    await createRestore('dr-by-id', {
      from: { repository: 'primary', snapshot: snapshotId.slice(0, 12) },
      target: { volume: { claimName: 'dr-by-id' } },
      requestedBy: 'dev@acme.example',
    });
    const pending = await waitForRestore('dr-by-id', 'PendingApproval', 20_000);
    assert.deepEqual(pending.status?.approverGroups, ['tidemark:restore-approvers']);
    assert.equal(pending.status?.approvalSummary, '0/1');
    await approveAs('dr-by-id', 'oncall@acme.example');
    const done = await waitForRestore('dr-by-id', 'Succeeded');
    assert.equal(done.status?.repository, 'primary');
    assert.equal(done.status?.snapshotId, snapshotId, 'the full id the agent resolved');
    assert.equal(done.status?.snapshotSource, `${namespace}/docs/documents`);
    assert.equal(done.status?.backupName, undefined);
    assert.deepEqual(await restoredFiles('dr-by-id'), originals);
  });

  test("(a') another namespace's snapshot in the same repository is refused by the agent, naming both", async () => {
    await createRestore('dr-foreign', {
      from: { repository: 'primary', snapshot: foreignSnapshotId },
      target: { volume: { claimName: 'dr-by-id' } },
      mode: 'replace',
      requestedBy: 'dev@acme.example',
    });
    await waitForRestore('dr-foreign', 'PendingApproval', 20_000);
    await approveAs('dr-foreign', 'oncall@acme.example');
    const failed = await waitForRestore('dr-foreign', 'Failed');
    assert.match(
      failed.status?.error ?? '',
      /is of payments\/ledger\/files, not of namespace tenants: a namespace restores only its own snapshots/,
    );
    assert.deepEqual(await restoredFiles('dr-by-id'), originals, 'nothing written');
  });

  test('(b) repository + source identity + latest: the agent picks the newest snapshot of that source', async () => {
    assert.ok(secondSnapshotId, 'the second Backup made a newer snapshot');
    await createRestore('dr-latest', {
      from: { repository: 'primary', sourceName: `${namespace}/docs/documents` },
      target: { volume: { claimName: 'dr-latest' } },
      requestedBy: 'dev@acme.example',
    });
    await waitForRestore('dr-latest', 'PendingApproval', 20_000);
    await approveAs('dr-latest', 'oncall@acme.example');
    const done = await waitForRestore('dr-latest', 'Succeeded');
    assert.equal(done.status?.snapshotId, secondSnapshotId);
    assert.deepEqual(await restoredFiles('dr-latest'), originals);
  });

  test('(c) a sync request on the BackupRepository re-imports the Backups, which are not run again', async () => {
    await env.cluster.kubectl([
      'annotate',
      'backuprepository',
      'primary',
      '-n',
      namespace,
      'tidemark.dev/sync-requested=after-the-fire',
    ]);
    let imported: Backup[] = [];
    await waitUntil(
      'both Backups re-imported',
      async () => {
        imported = (await env.backups()).filter((b) => b.status?.phase === 'Succeeded');
        return imported.length === 2;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.deepEqual(imported.map((b) => b.status?.snapshotId).sort(), [snapshotId, secondSnapshotId].sort());
    for (const b of imported) {
      assert.equal(b.metadata.annotations?.['tidemark.dev/imported-from'], 'primary');
      assert.deepEqual(b.spec, { policy: 'docs', source: 'documents', type: 'full' });
      assert.equal(b.metadata.labels?.['tidemark.dev/policy'], 'docs');
      assert.ok(b.status?.completionTime);
    }
    const first = imported.find((b) => b.status?.snapshotId === snapshotId);
    const name = first?.metadata.name ?? '';
    assert.match(await env.cluster.kubectl(['get', 'backups', '-n', namespace]), new RegExp(`${name}\\s+.*Succeeded`));
    await waitUntil(
      'the request recorded as handled',
      async () =>
        (await get<{ metadata: { annotations?: Record<string, string> } }>('backuprepositories', 'primary'))?.metadata
          .annotations?.['tidemark.dev/synced'] === 'after-the-fire',
      { timeoutMs: 20_000 },
    );
    // Not run again: no backup Job for it, and it stays Succeeded.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const batch = env.cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
    const jobs = await batch.listNamespacedJob({ namespace, labelSelector: `tidemark.dev/backup=${name}` });
    assert.deepEqual(
      jobs.items.map((j) => j.metadata?.name),
      [],
    );
    assert.equal((await get<Backup>('backups', name))?.status?.phase, 'Succeeded');
    assert.equal((await env.backups()).length, 2, 'one Backup per snapshot');
  });
});
