import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { type ProcessKubelet, startProcessKubelet } from '../harness/kubelet/kubelet.ts';
import { waitUntil } from '../harness/process.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const namespace = 'jobs';
let cluster: Cluster;
let kubelet: ProcessKubelet;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;
const workDir = makeWorkDir('kubelet');

before(async () => {
  const started = Date.now();
  cluster = await startCluster(workDir.path);
  // The ready-time target lives in the benchmarks; this only shows it in the test log.
  console.log(`control plane ready in ${Date.now() - started} ms`);
  kubelet = await startProcessKubelet(cluster.kubeConfig, { workDir: `${workDir.path}/kubelet` });
  core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  batch = cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await waitUntil(
    'default ServiceAccount in namespace jobs',
    async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    },
    { timeoutMs: 30_000 },
  );
});

after(async () => {
  await kubelet?.stop();
  await cluster?.stop();
  workDir.remove();
});

function job(name: string, script: string, extra: Partial<k8s.V1JobSpec> = {}): k8s.V1Job {
  return {
    metadata: { name, namespace },
    spec: {
      backoffLimit: 0,
      ...extra,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: 'busybox',
              command: ['sh', '-c', script],
              env: [
                { name: 'GREETING', valueFrom: { secretKeyRef: { name: 'greeting', key: 'text' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'MESSAGE', value: '$(GREETING) from $(POD_NAME)' },
              ],
              volumeMounts: [
                { name: 'out', mountPath: '/out' },
                { name: 'settings', mountPath: '/etc/settings', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'out', persistentVolumeClaim: { claimName: 'results' } },
            { name: 'settings', configMap: { name: 'settings' } },
          ],
        },
      },
    },
  };
}

async function jobCondition(name: string): Promise<string | undefined> {
  const current = await batch.readNamespacedJob({ name, namespace });
  return current.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
    ?.type;
}

async function podsOf(jobName: string): Promise<k8s.V1Pod[]> {
  const list = await core.listNamespacedPod({
    namespace,
    labelSelector: `batch.kubernetes.io/job-name=${jobName}`,
  });
  return list.items;
}

describe('process kubelet with the real Job controller', () => {
  before(async () => {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'greeting' }, stringData: { text: 'hello' } },
    });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings' }, data: { mode: 'fast' } },
    });
    mkdirSync(kubelet.claimDir(namespace, 'results'), { recursive: true });
  });

  test('a Job whose command succeeds is marked Complete by the Job controller', async () => {
    await batch.createNamespacedJob({
      namespace,
      body: job(
        'succeeds',
        'echo "$MESSAGE" > /out/greeting && cat /etc/settings/mode > /out/mode && echo all-good > /dev/termination-log',
      ),
    });
    await waitUntil('job succeeds completes', async () => (await jobCondition('succeeds')) !== undefined, {
      timeoutMs: 60_000,
    });
    assert.equal(await jobCondition('succeeds'), 'Complete');
    const [pod] = await podsOf('succeeds');
    assert.equal(pod?.status?.phase, 'Succeeded');
    assert.equal(pod?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    assert.equal(pod?.status?.containerStatuses?.[0]?.state?.terminated?.message?.trim(), 'all-good');
    const claim = kubelet.claimDir(namespace, 'results');
    assert.match(readFileSync(`${claim}/greeting`, 'utf8'), /^hello from succeeds-[a-z0-9]+\n$/);
    assert.equal(readFileSync(`${claim}/mode`, 'utf8'), 'fast');
  });

  test('a failing command ends Failed after backoffLimit retries', async () => {
    await batch.createNamespacedJob({
      namespace,
      body: job('fails', 'echo "cannot reach the database" >&2; exit 3', { backoffLimit: 2 }),
    });
    await waitUntil('job fails ends', async () => (await jobCondition('fails')) !== undefined, {
      timeoutMs: 120_000,
    });
    const current = await batch.readNamespacedJob({ name: 'fails', namespace });
    const failed = current.status?.conditions?.find((c) => c.type === 'Failed');
    assert.equal(failed?.status, 'True');
    assert.equal(failed?.reason, 'BackoffLimitExceeded');
    const pods = await podsOf('fails');
    assert.equal(pods.length, 3, 'one pod and backoffLimit (2) retries');
    for (const pod of pods) {
      assert.equal(pod.status?.phase, 'Failed');
      assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    }
    assert.match(kubelet.logs(namespace, pods[0]?.metadata?.name ?? '', 'main'), /cannot reach the database/);
  });

  test('a missing Secret or key leaves the pod Pending, waiting with CreateContainerConfigError, until it appears', async () => {
    const broken = job('no-secret-2', 'echo "$GREETING" > /out/late-greeting');
    const env = broken.spec?.template.spec?.containers[0]?.env?.[0];
    if (env?.valueFrom?.secretKeyRef) env.valueFrom.secretKeyRef.name = 'late';
    await batch.createNamespacedJob({ namespace, body: broken });
    const waiting = async () => (await podsOf('no-secret-2'))[0]?.status?.containerStatuses?.[0]?.state?.waiting;
    await waitUntil('pod of no-secret-2 waiting', async () => (await waiting()) !== undefined, { timeoutMs: 60_000 });
    const [pod] = await podsOf('no-secret-2');
    assert.equal(pod?.status?.phase, 'Pending');
    assert.equal((await waiting())?.reason, 'CreateContainerConfigError');
    assert.match((await waiting())?.message ?? '', /key "text" of secret "late"/);

    // The Secret without the key: still waiting, now naming the key.
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'late' }, stringData: { other: 'x' } } });
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal((await podsOf('no-secret-2'))[0]?.status?.phase, 'Pending');
    assert.equal(await jobCondition('no-secret-2'), undefined, 'the Job has not ended');

    // The key appears: the kubelet starts the container, as a real one retries.
    await core.replaceNamespacedSecret({
      name: 'late',
      namespace,
      body: { metadata: { name: 'late' }, stringData: { text: 'finally' } },
    });
    await waitUntil('job no-secret-2 ends', async () => (await jobCondition('no-secret-2')) !== undefined, {
      timeoutMs: 60_000,
    });
    assert.equal(await jobCondition('no-secret-2'), 'Complete');
    assert.equal(readFileSync(`${kubelet.claimDir(namespace, 'results')}/late-greeting`, 'utf8'), 'finally\n');
  });

  test('a status update the API server refuses for a while is retried until accepted, as the status manager does', async () => {
    // An admission policy refuses status updates of pods labelled hold-status: the kubelet cannot report
    // Pending (so it starts nothing) until the label is gone.
    const admission = cluster.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: 'hold-pod-status' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/status'] },
            ],
          },
          validations: [
            { expression: "!('hold-status' in object.metadata.?labels.orValue({}))", message: 'held by the test' },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: 'hold-pod-status' },
        spec: { policyName: 'hold-pod-status', validationActions: ['Deny'] },
      },
    });
    // In force once a status update of a held pod on another node (this kubelet leaves it alone) is refused.
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'probe-hold', labels: { 'hold-status': 'true' } },
        spec: { nodeName: 'elsewhere', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitUntil(
      'the admission policy refuses held status updates',
      async () => {
        const probe = await core.readNamespacedPod({ name: 'probe-hold', namespace });
        probe.status = { ...probe.status, message: String(Date.now()) };
        return core.replaceNamespacedPodStatus({ name: 'probe-hold', namespace, body: probe }).then(
          () => false,
          (error: { code?: number }) => error.code === 422 || error.code === 403,
        );
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    const held = job('held', 'echo released > /out/held');
    const template = held.spec?.template;
    if (template) template.metadata = { labels: { 'hold-status': 'true' } };
    await batch.createNamespacedJob({ namespace, body: held });
    await waitUntil('pod of held bound', async () => Boolean((await podsOf('held'))[0]?.spec?.nodeName), {
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 3000));
    const [pod] = await podsOf('held');
    assert.equal(pod?.status?.phase, 'Pending', 'no status was accepted while held');
    assert.equal(pod?.status?.containerStatuses, undefined);

    await core.patchNamespacedPod(
      { name: pod?.metadata?.name ?? '', namespace, body: [{ op: 'remove', path: '/metadata/labels/hold-status' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await waitUntil('job held ends', async () => (await jobCondition('held')) !== undefined, { timeoutMs: 60_000 });
    assert.equal(await jobCondition('held'), 'Complete');
    assert.equal(readFileSync(`${kubelet.claimDir(namespace, 'results')}/held`, 'utf8'), 'released\n');
  });

  test('deleting a Job garbage-collects its Pods through owner references', async () => {
    const owned = await podsOf('succeeds');
    const owner = await batch.readNamespacedJob({ name: 'succeeds', namespace });
    assert.ok(owned.length > 0);
    for (const pod of owned) assert.equal(pod.metadata?.ownerReferences?.[0]?.uid, owner.metadata?.uid);
    await batch.deleteNamespacedJob({ name: 'succeeds', namespace, propagationPolicy: 'Background' });
    await waitUntil('pods of job succeeds deleted', async () => (await podsOf('succeeds')).length === 0, {
      timeoutMs: 60_000,
    });
  });

  test('deleting a running Job stops its process', async () => {
    const marker = `${kubelet.claimDir(namespace, 'results')}/still-running`;
    await batch.createNamespacedJob({
      namespace,
      body: job('sleeper', 'trap "exit 0" TERM; while true; do date > /out/still-running; sleep 0.2; done'),
    });
    await waitUntil('sleeper running', async () => (await podsOf('sleeper'))[0]?.status?.phase === 'Running', {
      timeoutMs: 30_000,
    });
    await batch.deleteNamespacedJob({ name: 'sleeper', namespace, propagationPolicy: 'Foreground' });
    await waitUntil('pods of sleeper deleted', async () => (await podsOf('sleeper')).length === 0, {
      timeoutMs: 60_000,
    });
    const last = readFileSync(marker, 'utf8');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(readFileSync(marker, 'utf8'), last, 'the process no longer writes after its pod is gone');
  });
  // Last: it stops the kubelet.
  test('a stopped kubelet starts nothing, also for a pod it was still setting up', async () => {
    const waiting = job('after-stop', 'echo "$GREETING" > /out/after-stop');
    const env = waiting.spec?.template.spec?.containers[0]?.env?.[0];
    if (env?.valueFrom?.secretKeyRef) env.valueFrom.secretKeyRef.name = 'later';
    await batch.createNamespacedJob({ namespace, body: waiting });
    await waitUntil(
      'pod of after-stop waiting for its Secret',
      async () => (await podsOf('after-stop'))[0]?.status?.containerStatuses?.[0]?.state?.waiting !== undefined,
      { timeoutMs: 60_000 },
    );
    await kubelet.stop();
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'later' }, stringData: { text: 'hi' } } });
    await new Promise((r) => setTimeout(r, 7000)); // past the set-up's longest retry interval (5 s)
    assert.equal(existsSync(`${kubelet.claimDir(namespace, 'results')}/after-stop`), false);
  });
});
