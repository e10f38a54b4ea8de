// The agent as Kubernetes runs it: a Job (real Job controller, process kubelet) whose pod gets the
// repository key and the S3 credentials from Secrets via env, backs up a volume (a PVC) and reports
// through its termination message. SPEC R-BACKUP, R-RESTORE.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { AgentTaskName } from '../../src/agent/tasks/names.ts';
import type { AgentResult } from '../../src/agent/tasks/registry.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { describeTree, makeTrickyTree } from '../harness/fixtures.ts';
import { type ProcessKubelet, startProcessKubelet } from '../harness/kubelet/kubelet.ts';
import { waitUntil } from '../harness/process.ts';
import { type S3Server, startS3 } from '../harness/s3.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const namespace = 'tenants';
const workDir = makeWorkDir('agent-job');
let cluster: Cluster;
let kubelet: ProcessKubelet;
let s3: S3Server;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;
let repoUrl: string;
const passphrase = 'agent test passphrase';

before(async () => {
  [cluster, s3] = await Promise.all([startCluster(join(workDir.path, 'cluster')), startS3(workDir.path)]);
  kubelet = await startProcessKubelet(cluster.kubeConfig, { workDir: join(workDir.path, 'kubelet') });
  core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  batch = cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
  await s3.createBucket('tenant-backups');
  repoUrl = `s3://tenant-backups/acme?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&pathStyle=true`;
  await Repository.init(
    openStorage(repoUrl, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey }),
    Buffer.from(passphrase),
  );
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'repository-passphrase' }, stringData: { passphrase } },
  });
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 's3-credentials' },
      stringData: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
    },
  });
  await waitUntil(
    'default ServiceAccount',
    async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    },
    { timeoutMs: 30_000 },
  );
  await makeTrickyTree(join(kubelet.claimDir(namespace, 'documents'), 'acme'));
  await mkdir(kubelet.claimDir(namespace, 'documents-restored'), { recursive: true });
});

after(async () => {
  await kubelet?.stop();
  await Promise.all([cluster?.stop(), s3?.stop()]);
  workDir.remove();
});

function agentJob(name: string, task: string, env: k8s.V1EnvVar[], claim: string): k8s.V1Job {
  return {
    metadata: { name, namespace },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 10001 },
          containers: [
            {
              name: 'agent',
              image: 'ghcr.io/tidemark-dev/tidemark:0.1.0',
              // The process kubelet runs this from the work tree; the image runs `tidemark agent`.
              command: [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'agent', task],
              workingDir: repoRoot,
              env: [
                { name: 'TIDEMARK_REPO', value: repoUrl },
                { name: 'TIDEMARK_RESULT_FILE', value: '/dev/termination-log' },
                {
                  name: 'TIDEMARK_REPO_KEY',
                  valueFrom: { secretKeyRef: { name: 'repository-passphrase', key: 'passphrase' } },
                },
                ...env,
              ],
              envFrom: [{ secretRef: { name: 's3-credentials' } }],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
            },
          ],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
        },
      },
    },
  };
}

async function runJob<N extends AgentTaskName>(job: k8s.V1Job): Promise<{ condition: string; result: AgentResult<N> }> {
  await batch.createNamespacedJob({ namespace, body: job });
  const name = job.metadata?.name ?? '';
  let condition = '';
  await waitUntil(
    `job ${name}`,
    async () => {
      const current = await batch.readNamespacedJob({ name, namespace });
      condition =
        current.status?.conditions?.find((c) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True')?.type ??
        '';
      return condition !== '';
    },
    { timeoutMs: 120_000 },
  );
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${name}` });
  const message = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '';
  return { condition, result: JSON.parse(message) as AgentResult<N> };
}

describe('agent Jobs', () => {
  let snapshotId = '';

  test('a backup Job of a volume completes and reports its snapshot in the termination message', async () => {
    const { condition, result } = await runJob<'backup'>(
      agentJob(
        'backup-documents',
        'backup',
        [
          { name: 'TIDEMARK_SOURCE', value: 'file:///data' },
          { name: 'TIDEMARK_BACKUP_TYPE', value: 'full' },
          { name: 'TIDEMARK_EXCLUDES', value: JSON.stringify(['*.sh']) },
        ],
        'documents',
      ),
    );
    assert.equal(condition, 'Complete');
    assert.equal(result.ok, true);
    assert.ok(result.snapshotId);
    assert.ok((result.logicalBytes ?? 0) > 20 * 1024 * 1024);
    assert.deepEqual(result.objects, [{ name: 'acme', records: 8 }]);
    snapshotId = result.snapshotId ?? '';
    const logs = kubelet.logs(namespace, (await podName('backup-documents')) ?? '', 'agent');
    assert.ok(!logs.includes(passphrase) && !logs.includes(s3.secretAccessKey), 'no secret in the logs');
    assert.match(logs, /"event":"backup-succeeded"/);
  });

  test('a restore Job into an empty volume gives back the tree; into a non-empty one it fails and changes nothing', async () => {
    const restore = (name: string) =>
      agentJob(
        name,
        'restore',
        [
          { name: 'TIDEMARK_SNAPSHOT', value: snapshotId },
          { name: 'TIDEMARK_TARGET', value: 'file:///data' },
        ],
        'documents-restored',
      );
    const first = await runJob(restore('restore-documents'));
    assert.equal(first.condition, 'Complete', JSON.stringify(first.result));
    const original = await describeTree(kubelet.claimDir(namespace, 'documents'));
    const restoredDir = kubelet.claimDir(namespace, 'documents-restored');
    const expected = Object.fromEntries(
      Object.entries(original).filter(([path]) => !path.endsWith(Buffer.from('script.sh').toString('hex'))),
    );
    assert.deepEqual(await describeTree(restoredDir), expected, 'restored except the excluded *.sh');

    await writeFile(join(restoredDir, 'acme', 'new-since.txt'), 'user data');
    const before = await describeTree(restoredDir);
    const second = await runJob(restore('restore-documents-again'));
    assert.equal(second.condition, 'Failed');
    assert.equal(second.result.ok, false);
    assert.match(second.result.error?.message ?? '', /not empty.*mode replace/);
    assert.deepEqual(await describeTree(restoredDir), before);
  });
});

async function podName(job: string): Promise<string | undefined> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` });
  return pods.items[0]?.metadata?.name;
}
