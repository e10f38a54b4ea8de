// Exports through the API (issue 13, R-EXPORT, R-AUDIT), on the real control plane with the operator
// and agent Jobs: a BackupExport of a succeeded Backup becomes Ready with where the ZIP is and when its
// link expires; the link is only in a Secret the export owns (never in status, Events or logs) and
// downloads the ZIP; once expired the ZIP is deleted and the link refused; deleting an export deletes
// its ZIP (finalizer) and its Secret (owner reference).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import * as k8s from '@kubernetes/client-node';
import type { Backup, BackupExport } from '../../src/api/kinds.ts';
import { installKubectlPlugin, kubectlWithPlugins } from '../harness/kubectl-plugin.ts';
import { waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('operator-export');
let env: TidemarkEnvironment;
let namespace: string;
let core: k8s.CoreV1Api;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  namespace = env.namespace;
  core = env.cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  await env.cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy/agent-rbac.yaml')]);
  const documents = join(env.kubelet.claimDir(namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 3; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(100));
  await env.apply([
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'documents', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
    volumePolicy(namespace, 'docs', { full: { every: '1h' }, suspend: true }),
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'docs-now', namespace },
      spec: { policy: 'docs', source: 'documents', type: 'full' },
    },
  ]);
  env.startOperator('operator');
  await waitFor(
    'Backup docs-now ends',
    () => env.get<Backup>('backups', 'docs-now'),
    (b) => ['Succeeded', 'Failed'].includes(b.status?.phase ?? ''),
  );
  assert.equal((await env.read<Backup>('backups', 'docs-now')).status?.phase, 'Succeeded');
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

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

const exportObject = (name: string, expiresAfter: string) => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'BackupExport',
  metadata: { name, namespace },
  spec: { backup: 'docs-now', expiresAfter },
});

const exportOf = (name: string) => () => env.get<BackupExport>('backupexports', name);

async function linkOf(secretName: string): Promise<string> {
  const secret = await core.readNamespacedSecret({ name: secretName, namespace });
  return Buffer.from(secret.data?.url ?? '', 'base64').toString('utf8');
}

async function objectExists(key: string): Promise<boolean> {
  const client = env.s3.client();
  try {
    await client.send(new HeadObjectCommand({ Bucket: 'backups', Key: `${namespace}/${key}` }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

/** Everything a user or an operator of the cluster can read without the Secret: status, Events, operator and agent logs. */
async function visibleText(name: string): Promise<string> {
  const events = await core.listNamespacedEvent({ namespace });
  const podLogs = readdirSync(join(workDir.path, 'kubelet'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.log'))
    .map((f) => readFileSync(join(workDir.path, 'kubelet', f), 'utf8'));
  return [
    JSON.stringify(await env.get('backupexports', name)),
    JSON.stringify(events.items),
    readFileSync(join(workDir.path, 'operator.log'), 'utf8'),
    ...podLogs,
  ].join('\n');
}

describe('a BackupExport', () => {
  test('becomes Ready with its ZIP and a link in its own Secret, audited, then expires: the ZIP is deleted and the link refused', async () => {
    await env.apply([exportObject('docs-export', '25s')]);
    const ready = await waitFor('export Ready', exportOf('docs-export'), (e) =>
      ['Ready', 'Failed'].includes(e.status?.phase ?? ''),
    );
    assert.equal(ready.status?.phase, 'Ready', ready.status?.error);
    const status = ready.status ?? {};
    assert.equal(status.secretName, 'docs-export-export-link');
    assert.match(status.objectKey ?? '', /^exports\/tenants\/docs-export-[0-9a-f-]+\.zip$/);
    assert.equal(status.location, `s3://backups/${namespace}/${status.objectKey}`);
    assert.ok((status.sizeBytes ?? 0) > 0);
    assert.deepEqual(status.objects, [{ name: 'files', records: 3 }]);
    assert.ok(Date.parse(status.expiryTime ?? '') > Date.now());

    const secret = await core.readNamespacedSecret({ name: status.secretName ?? '', namespace });
    assert.deepEqual(
      secret.metadata?.ownerReferences?.map((r) => `${r.kind}/${r.name}/${r.uid}`),
      [`BackupExport/docs-export/${ready.metadata.uid}`],
    );
    const link = await linkOf(status.secretName ?? '');
    const download = await fetch(link);
    assert.equal(download.status, 200);
    const zip = Buffer.from(await download.arrayBuffer());
    assert.equal(zip.length, status.sizeBytes);
    assert.equal(zip.subarray(0, 4).toString('latin1'), 'PK\x03\x04');

    const events = await core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.kind=BackupExport,involvedObject.name=docs-export',
    });
    assert.deepEqual(events.items.map((e) => e.reason).sort(), ['ExportReady', 'ExportStarted']);
    assert.match(readFileSync(join(workDir.path, 'operator.log'), 'utf8'), /"event":"export-ExportReady"/);
    const signature = new URL(link).searchParams.get('X-Amz-Signature') ?? 'none';
    assert.ok(signature.length > 20);
    assert.ok(!(await visibleText('docs-export')).includes(signature), 'the link is only in the Secret');

    const expired = await waitFor('export Expired', exportOf('docs-export'), (e) => e.status?.phase === 'Expired');
    assert.equal(expired.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'Expired');
    assert.equal(await objectExists(status.objectKey ?? ''), false, 'the ZIP is deleted once expired');
    const refused = await fetch(link);
    await refused.arrayBuffer();
    assert.ok([403, 404].includes(refused.status), `expired link answered ${refused.status}`);
  });

  test('deleted, it deletes its ZIP (finalizer) and its Secret goes with it', async () => {
    await env.apply([exportObject('docs-export-2', '1h')]);
    const ready = await waitFor('export Ready', exportOf('docs-export-2'), (e) =>
      ['Ready', 'Failed'].includes(e.status?.phase ?? ''),
    );
    assert.equal(ready.status?.phase, 'Ready', ready.status?.error);
    assert.deepEqual(ready.metadata.finalizers, ['tidemark.dev/export-cleanup']);
    const key = ready.status?.objectKey ?? '';
    assert.equal(await objectExists(key), true);
    await env.cluster.kubectl(['delete', '-n', namespace, 'backupexport', 'docs-export-2', '--wait=false']);
    await waitFor(
      'export gone',
      async () => ((await exportOf('docs-export-2')()) ? undefined : true),
      () => true,
    );
    assert.equal(await objectExists(key), false, 'the ZIP is deleted before the export goes');
    await waitUntil(
      'the link Secret garbage-collected',
      async () => {
        try {
          await core.readNamespacedSecret({ name: 'docs-export-2-export-link', namespace });
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });

  test('`kubectl tidemark export BACKUP --expires-after 1h` creates the export, waits, and prints the link', async () => {
    const pluginDir = installKubectlPlugin(join(workDir.path, 'plugins'));
    const run = await kubectlWithPlugins(
      pluginDir,
      ['tidemark', 'export', 'docs-now', '--expires-after', '1h', '-n', namespace],
      { KUBECONFIG: env.cluster.kubeconfigPath, HOME: workDir.path },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^backupexport\.tidemark\.dev\/docs-now-export-\w+ ready: .+, until \d{4}-/);
    const link = run.stdout.trim();
    assert.ok(link.startsWith(env.s3.endpoint), link);
    const response = await fetch(link);
    assert.equal(response.status, 200);
    assert.equal(
      Buffer.from(await response.arrayBuffer())
        .subarray(0, 2)
        .toString(),
      'PK',
    );
    const bad = await kubectlWithPlugins(pluginDir, ['tidemark', 'export', 'docs-now', '--expires-after', 'soon'], {
      KUBECONFIG: env.cluster.kubeconfigPath,
      HOME: workDir.path,
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--expires-after soon/);
  });

  test('an export of a Backup that does not exist waits, saying so', async () => {
    await env.apply([{ ...exportObject('no-backup', '1h'), spec: { backup: 'nope', expiresAfter: '1h' } }]);
    const waiting = await waitFor('export Pending', exportOf('no-backup'), (e) => e.status?.phase === 'Pending');
    assert.equal(waiting.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'BackupNotFound');
  });
});
