// `kubectl tidemark` as people run it (issue #12): real kubectl finds kubectl-tidemark on PATH and runs it
// against the test control plane, with the operator running so status has data. The plugin honours
// KUBECONFIG, --kubeconfig, --context and -n itself (kubectl passes them through untouched).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Backup, BackupPolicy, RestoreRequest } from '../../src/api/kinds.ts';
import type { SourceStatusRow } from '../../src/cli/kubectl/status.ts';
import { installFourEyes } from '../harness/four-eyes.ts';
import { installKubectlPlugin, kubectlWithPlugins } from '../harness/kubectl-plugin.ts';
import { waitUntil } from '../harness/process.ts';
import { startTidemarkEnvironment, type TidemarkEnvironment, volumePolicy } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('kubectl-plugin');
const pluginDir = join(workDir.path, 'plugins');
let env: TidemarkEnvironment;
let bobKubeconfig: string;

/** `kubectl <args>` with the plugin directory on PATH and KUBECONFIG set, as a shell would run it. */
const kubectl = (args: string[], extraEnv: Record<string, string> = {}) =>
  kubectlWithPlugins(pluginDir, args, { KUBECONFIG: env.cluster.kubeconfigPath, HOME: workDir.path, ...extraEnv });

async function tidemark(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const run = await kubectl(['tidemark', ...args], extraEnv);
  assert.equal(run.code, 0, `kubectl tidemark ${args.join(' ')} failed: ${run.stderr}`);
  return run.stdout;
}

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  installKubectlPlugin(pluginDir);
  // bob approves as himself: a kubeconfig impersonating him (admin may impersonate).
  bobKubeconfig = join(workDir.path, 'bob.kubeconfig');
  writeFileSync(
    bobKubeconfig,
    (await env.cluster.kubectl(['config', 'view', '--raw'])).replace(/( +)token: (.*)/, '$1token: $2\n$1as: bob'),
  );
  await installFourEyes(env.cluster, env.namespace, [{ user: 'bob', groups: [] }]);
  await mkdir(join(env.kubelet.claimDir(env.namespace, 'documents'), 'files'), { recursive: true });
  writeFileSync(join(env.kubelet.claimDir(env.namespace, 'documents'), 'files', 'a.txt'), 'a document\n');
  await env.apply([
    volumePolicy(
      env.namespace,
      'nightly',
      { full: { every: '24h', anchor: '2026-01-01T00:00:00Z' } },
      {
        objectives: { rpo: '1h' },
        restore: { approval: { required: 1, approverUsers: ['bob'] } },
      },
    ),
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'documents', namespace: env.namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  ]);
  env.startOperator('operator');
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

const policy = () => env.read<BackupPolicy>('backuppolicies', 'nightly');

describe('kubectl tidemark', () => {
  test('kubectl finds the plugin on PATH; backup now runs like a scheduled backup; status then says when', async () => {
    const list = await kubectl(['plugin', 'list']);
    assert.match(list.stdout, /kubectl-tidemark/, list.stderr);
    // The schedule's next slot is the next midnight (UTC): the data comes from an on-demand backup.
    const created = JSON.parse(
      await tidemark(['backup', 'now', 'nightly', '-n', env.namespace, '-o', 'json']),
    ) as Backup;
    const name = created.metadata.name ?? '';
    assert.match(name, /^nightly-documents-now-/);
    assert.equal(created.spec.scheduledTime, undefined);
    await waitUntil('the policy records the success', async () => Boolean((await policy()).status?.lastSuccessTime), {
      timeoutMs: 60_000,
    });
    assert.equal((await env.read<Backup>('backups', name)).status?.phase, 'Succeeded');

    const table = await tidemark(['status', '-n', env.namespace]);
    assert.match(table.split('\n')[0] ?? '', /^POLICY\s+SOURCE\s+LAST SUCCESS\s+RPO\s+RPO TARGET\s+RPO MET/);
    assert.match(
      table.split('\n')[1] ?? '',
      /^nightly\s+documents\s+\d+s ago\s+\d+s\s+1h\s+yes\s+-\s+in \d+[hm]\w*\s+none$/,
    );

    const [row] = JSON.parse(
      await tidemark(
        ['status', 'nightly', '-o', 'json', '--kubeconfig', env.cluster.kubeconfigPath, '-n', env.namespace],
        {
          KUBECONFIG: '/nonexistent',
        },
      ),
    ) as SourceStatusRow[];
    const status = (await policy()).status;
    assert.equal(row?.lastSuccessTime, status?.lastSuccessTime);
    assert.equal(row?.lastSuccessfulBackup, name);
    assert.equal(row?.rpoTargetSeconds, 3600);
    assert.equal(row?.rpoMet, 'True');

    // The context's namespace is the default; --context picks the context.
    const none = await kubectl(['tidemark', 'status', '--context', 'tidemark-test']);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /No BackupPolicies found in default/);
    const yaml = await tidemark(['status', '-o', 'yaml', '-n', env.namespace]);
    assert.match(yaml, /^- namespace: tenants\n\s+policy: nightly\n\s+source: documents\n/);

    // The agent's log through the API server (pods/log), each line naming what it worked for.
    const logs = await tidemark(['logs', 'backup', name, '-n', env.namespace]);
    assert.match(logs, new RegExp(`^==> ${name.slice(0, 40)}.*/agent <==\\n`));
    const done = logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'backup-succeeded');
    assert.ok(done, logs);
    assert.deepEqual(
      [done.namespace, done.policy, done.source, done.backup],
      [env.namespace, 'nightly', 'documents', name],
    );
    assert.match(String(done.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('asking about something that does not exist exits non-zero and names it', async () => {
    for (const [args, message] of [
      [['status', 'missing'], /BackupPolicy tenants\/missing: not found/],
      [['backup', 'now', 'missing'], /BackupPolicy tenants\/missing: not found/],
      [['backup', 'now', 'nightly', '--source', 'orders'], /has no source orders \(it has documents\)/],
      [['restore', '--policy', 'nightly', '--source', 'orders', '--to-original'], /has no source orders/],
      [['approve', 'missing'], /RestoreRequest tenants\/missing: not found/],
      [['logs', 'backup', 'missing'], /Backup tenants\/missing: not found/],
      [['status', '--context', 'elsewhere'], /context elsewhere is not in the kubeconfig/],
    ] as const) {
      const run = await kubectl(['tidemark', ...args, '-n', env.namespace]);
      assert.notEqual(run.code, 0, `kubectl tidemark ${args.join(' ')} succeeded`);
      assert.match(run.stderr, message);
    }
  });

  test('restore creates a request in the caller’s name; the requester cannot approve it, bob can', async () => {
    const out = await tidemark([
      'restore',
      '-n',
      env.namespace,
      '--policy',
      'nightly',
      '--source',
      'documents',
      '--before',
      new Date().toISOString(),
      '--to-original',
      '--mode',
      'replace',
    ]);
    const name = /^restorerequest\.tidemark\.dev\/(\S+) created$/.exec(out.trim())?.[1] ?? '';
    const request = await env.read<RestoreRequest>('restorerequests', name);
    assert.equal(request.spec.requestedBy, 'admin');
    const decided = async () => (await env.read<RestoreRequest>('restorerequests', name)).status;
    await waitUntil(
      'the operator decides the request',
      async () => ['PendingApproval', 'Failed'].includes((await decided())?.phase ?? ''),
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal((await decided())?.phase, 'PendingApproval', (await decided())?.error);
    const own = await kubectl(['tidemark', 'approve', name, '-n', env.namespace]);
    assert.notEqual(own.code, 0);
    assert.match(own.stderr, /the requester cannot approve their own restore/);

    await tidemark(['approve', name, '-n', env.namespace, '--comment', 'checked with the tenant'], {
      KUBECONFIG: bobKubeconfig,
    });
    const approved = await env.read<RestoreRequest>('restorerequests', name);
    assert.deepEqual(approved.spec.approvals, [{ user: 'bob', comment: 'checked with the tenant' }]);
    await waitUntil(
      'the operator counts the approval',
      async () => (await env.read<RestoreRequest>('restorerequests', name)).status?.approvalSummary === '1/1',
      { timeoutMs: 30_000 },
    );
  });
});
