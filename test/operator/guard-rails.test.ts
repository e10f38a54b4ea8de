// Deletion guard rails and immutability on the real control plane (issue 8, findings 7 and 9): a mass
// `kubectl delete backups --all` keeps every snapshot; only an annotated (or retention's) deletion
// forgets; a Backup inside its repository's immutability period is never forgotten, and the agent's
// forget task refuses it whoever asks; a BackupRepository a policy uses waits for the policy before it
// goes; a namespace being deleted is never held up by these finalizers. A volume source with
// volumeSnapshotClassName is read from a CSI VolumeSnapshot, never the live PVC: without the snapshot
// API the Backup fails saying so; with it (CRDs installed, the test standing in for the snapshot
// controller) the Backup waits for the snapshot, reads a PVC restored from it, then deletes both.
// Annotation values are written out (not imported) so this file also runs against code without them.
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup, BackupRepository } from '../../src/api/kinds.ts';
import { volumeSnapshotName } from '../../src/operator/backup/volume-snapshot.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { WaitFailed, waitUntil } from '../harness/process.ts';
import {
  PASSPHRASE,
  secretObject,
  startTidemarkEnvironment,
  type TidemarkEnvironment,
  volumePolicy,
} from '../harness/tidemark.ts';
import { installVolumeSnapshotApi } from '../harness/volume-snapshots.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('guard-rails');
let env: TidemarkEnvironment;
const LOCKED_PERIOD = '1h';

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  const documents = join(env.kubelet.claimDir(env.namespace, 'documents'), 'files');
  await mkdir(documents, { recursive: true });
  for (let i = 0; i < 3; i++) await writeFile(join(documents, `doc-${i}.txt`), `document ${i}\n`.repeat(2000));
  await env.apply([
    s3RepositoryObject(env.namespace, 'locked', 'locked', { immutability: { period: LOCKED_PERIOD } }),
    volumePolicy(env.namespace, 'guarded', { full: { every: '1h' }, suspend: true }),
    volumePolicy(env.namespace, 'immutable', { full: { every: '1h' }, suspend: true }, { repository: 'locked' }),
  ]);
  env.startOperator('operator');
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

function s3RepositoryObject(namespace: string, name: string, prefix: string, extra: object = {}) {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupRepository',
    metadata: { name, namespace },
    spec: {
      provider: 's3',
      s3: { bucket: 'backups', endpoint: env.s3.endpoint, forcePathStyle: true },
      prefix,
      region: 'us-east-1',
      credentialsSecret: { name: 's3-credentials' },
      encryptionKeySecret: { name: 'repository-passphrase' },
      ...extra,
    },
  };
}

const urlOf = (prefix: string) => env.primaryUrl.replace(`/${env.namespace}?`, `/${prefix}?`);

async function snapshotIds(prefix: string): Promise<string[]> {
  const repository = await Repository.open(openStorage(urlOf(prefix), env.s3Env), Buffer.from(PASSPHRASE));
  return (await repository.snapshots()).map((s) => s.id as string);
}

/** Applies on-demand Backups of a policy and waits until each succeeded; returns their snapshot ids. */
async function backUp(policy: string, names: string[], namespace = env.namespace): Promise<string[]> {
  await env.apply(
    names.map((name) => ({
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name, namespace },
      spec: { policy, source: 'documents', type: 'full' },
    })),
  );
  const ids: string[] = [];
  for (const name of names) {
    await waitUntil(
      `Backup ${name} succeeded`,
      async () => {
        const status = (await env.get<Backup>('backups', name, namespace))?.status;
        if (status?.phase === 'Failed') throw new WaitFailed(`Backup ${name} failed: ${status.error}`);
        return status?.phase === 'Succeeded';
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    ids.push((await env.get<Backup>('backups', name, namespace))?.status?.snapshotId ?? '');
  }
  return ids;
}

async function eventMessages(name: string, reason: string, namespace = env.namespace): Promise<string> {
  return env.cluster.kubectl([
    'get',
    'events',
    '-n',
    namespace,
    '--field-selector',
    `involvedObject.name=${name},reason=${reason}`,
    '-o',
    'jsonpath={.items[*].message}',
  ]);
}

const gone =
  (plural: string, name: string, namespace = env.namespace) =>
  async () =>
    (await env.get(plural, name, namespace)) === undefined;

describe('deleting Backups', () => {
  test('kubectl delete backups --all keeps every snapshot in the repository and records it', async () => {
    const ids = await backUp('guarded', ['mass-1', 'mass-2']);
    await env.cluster.kubectl(['delete', 'backups', '--all', '-n', env.namespace, '--wait=false']);
    for (const name of ['mass-1', 'mass-2'])
      await waitUntil(`Backup ${name} is gone`, gone('backups', name), { timeoutMs: 60_000, intervalMs: 500 });
    const stored = await snapshotIds(env.namespace);
    for (const id of ids) assert.ok(stored.includes(id), `snapshot ${id} is still in the repository`);
    assert.match(
      await eventMessages('mass-1', 'SnapshotKept'),
      /Backup mass-1 deleted; snapshot \w+ kept in primary .*annotate tidemark\.dev\/forget=true/,
    );
  });

  test('a Backup annotated tidemark.dev/forget=true before deletion has its snapshot forgotten', async () => {
    const [id] = await backUp('guarded', ['annotated']);
    await env.cluster.kubectl(['annotate', 'backup', 'annotated', '-n', env.namespace, 'tidemark.dev/forget=true']);
    await env.cluster.kubectl(['delete', 'backup', 'annotated', '-n', env.namespace, '--wait=false']);
    await waitUntil('Backup annotated is gone', gone('backups', 'annotated'), { timeoutMs: 90_000, intervalMs: 500 });
    assert.ok(!(await snapshotIds(env.namespace)).includes(id ?? ''), 'the annotated snapshot was forgotten');
  });
});

describe('immutability.period', () => {
  test('a Backup inside the period is not forgotten even when annotated; the event says until when', async () => {
    const [id] = await backUp('immutable', ['locked-1']);
    await env.cluster.kubectl(['annotate', 'backup', 'locked-1', '-n', env.namespace, 'tidemark.dev/forget=true']);
    await env.cluster.kubectl(['delete', 'backup', 'locked-1', '-n', env.namespace, '--wait=false']);
    await waitUntil('Backup locked-1 is gone', gone('backups', 'locked-1'), { timeoutMs: 90_000, intervalMs: 500 });
    // Give a forget Job, had one been created, the time to run before looking.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    assert.ok((await snapshotIds('locked')).includes(id ?? ''), 'the snapshot is still in the locked repository');
    assert.match(
      await eventMessages('locked-1', 'SnapshotKept'),
      /kept in locked \(kept: immutable until \S+ \(immutability\.period 1h\)\)/,
    );
  });

  test("the agent's forget task refuses a snapshot inside the period, whichever path asks", async () => {
    const [id] = await backUp('immutable', ['locked-2']);
    // The per-repository retention path: the Backup stays, its copy in `locked` is to be forgotten.
    await env.cluster.kubectl([
      'annotate',
      'backup',
      'locked-2',
      '-n',
      env.namespace,
      'tidemark.dev/retired-from=locked',
    ]);
    await waitUntil(
      'the forget Job failed',
      async () => /immutable until/.test(await eventMessages('locked-2', 'ForgetFailed')),
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    assert.match(
      await eventMessages('locked-2', 'ForgetFailed'),
      /snapshot \w+ in s3:\/\/backups\/locked.* is immutable until \S+ \(immutability\.period 1h\); not forgotten/,
    );
    assert.ok((await snapshotIds('locked')).includes(id ?? ''));
  });
});

describe('deleting a BackupRepository', () => {
  test('a repository a policy uses waits for the policy, with an InUse condition naming it', async () => {
    await env.cluster.kubectl(['delete', 'backuprepository', 'locked', '-n', env.namespace, '--wait=false']);
    await waitUntil(
      'the InUse condition says what holds the deletion',
      async () =>
        (await env.get<BackupRepository>('backuprepositories', 'locked'))?.status?.conditions?.find(
          (c) => c.type === 'InUse',
        )?.reason === 'DeletionBlocked',
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const held = await env.get<BackupRepository>('backuprepositories', 'locked');
    assert.ok(held?.metadata.deletionTimestamp, 'deletion was requested');
    assert.match(held?.status?.conditions?.find((c) => c.type === 'InUse')?.message ?? '', /immutable \(primary\)/);
    assert.match(await eventMessages('locked', 'DeletionBlocked'), /immutable \(primary\)/);
    await env.cluster.kubectl(['delete', 'backuppolicy', 'immutable', '-n', env.namespace]);
    await waitUntil('the repository is gone once no policy uses it', gone('backuprepositories', 'locked'), {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
  });

  test('deleting a namespace with a used repository and an annotated Backup completes', async () => {
    const doomed = 'doomed';
    await env.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: doomed } },
      secretObject(doomed, 'repository-passphrase', { passphrase: PASSPHRASE }),
      secretObject(doomed, 's3-credentials', env.s3Env),
      s3RepositoryObject(doomed, 'primary', doomed),
      volumePolicy(doomed, 'guarded', { full: { every: '1h' }, suspend: true }),
    ]);
    const documents = join(env.kubelet.claimDir(doomed, 'documents'), 'files');
    await mkdir(documents, { recursive: true });
    await writeFile(join(documents, 'a.txt'), 'a\n');
    const [id] = await backUp('guarded', ['last'], doomed);
    await waitUntil(
      'the repository holds the in-use finalizer',
      async () =>
        (await env.get<BackupRepository>('backuprepositories', 'primary', doomed))?.metadata.finalizers?.includes(
          'tidemark.dev/in-use',
        ) ?? false,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await env.cluster.kubectl(['annotate', 'backup', 'last', '-n', doomed, 'tidemark.dev/forget=true']);
    // Someone else's finalizer keeps the repository object while the namespace goes, so the Backup's
    // finalizer meets a repository it could forget in, in a namespace where no Job can be created.
    await env.cluster.kubectl([
      'patch',
      'backuprepository',
      'primary',
      '-n',
      doomed,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/metadata/finalizers/-', value: 'example.com/hold' }]),
    ]);
    await env.cluster.kubectl(['delete', 'namespace', doomed, '--wait=false']);
    await waitUntil('the annotated Backup is gone', gone('backups', 'last', doomed), {
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    const held = await env.get<BackupRepository>('backuprepositories', 'primary', doomed);
    const at = held?.metadata.finalizers?.indexOf('example.com/hold') ?? -1;
    await env.cluster.kubectl([
      'patch',
      'backuprepository',
      'primary',
      '-n',
      doomed,
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'test', path: `/metadata/finalizers/${at}`, value: 'example.com/hold' },
        { op: 'remove', path: `/metadata/finalizers/${at}` },
      ]),
    ]);
    const core = env.cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await waitUntil(
      'the namespace is gone',
      async () =>
        core.readNamespace({ name: doomed }).then(
          () => false,
          (error) => (error as { code?: number }).code === 404,
        ),
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    assert.ok((await snapshotIds(doomed)).includes(id ?? ''), 'the snapshot outlives its namespace');
  });
});

describe('volumeSnapshotClassName', () => {
  const csiPolicy = (name: string) =>
    volumePolicy(
      env.namespace,
      name,
      { full: { every: '1h' }, suspend: true },
      {
        sources: [{ name: 'documents', volume: { claimName: 'documents', volumeSnapshotClassName: 'csi-snapclass' } }],
      },
    );
  const onDemand = (name: string, policy: string) => ({
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: env.namespace },
    spec: { policy, source: 'documents', type: 'full' },
  });

  before(async () => {
    await env.apply([
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'documents', namespace: env.namespace },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'csi-disk',
          resources: { requests: { storage: '1Gi' } },
        },
      },
      csiPolicy('crash-consistent'),
    ]);
  });

  test('without the VolumeSnapshot API the Backup fails saying so, and no Job reads the live PVC', async () => {
    await env.apply([onDemand('csi-missing', 'crash-consistent')]);
    await waitUntil(
      'Backup csi-missing failed',
      async () => (await env.get<Backup>('backups', 'csi-missing'))?.status?.phase === 'Failed',
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const failed = await env.get<Backup>('backups', 'csi-missing');
    assert.match(
      failed?.status?.error ?? '',
      /volumeSnapshotClassName csi-snapclass, but this cluster does not serve the VolumeSnapshot API \(snapshot\.storage\.k8s\.io\/v1\)/,
    );
    assert.equal(failed?.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'VolumeSnapshotsUnavailable');
    const jobs = await env.cluster.kubectl([
      'get',
      'jobs',
      '-n',
      env.namespace,
      '-l',
      'tidemark.dev/backup=csi-missing',
      '-o',
      'name',
    ]);
    assert.equal(jobs.trim(), '', 'no Job was created');
  });

  test('with the API, the Backup snapshots the PVC, waits until it is ready, reads a PVC restored from it, then deletes both', async () => {
    await installVolumeSnapshotApi(env.cluster);
    await env.apply([onDemand('csi-run', 'crash-consistent')]);
    await waitUntil(
      'the Backup waits for its VolumeSnapshot',
      async () =>
        (await env.get<Backup>('backups', 'csi-run'))?.status?.conditions?.find((c) => c.type === 'Succeeded')
          ?.reason === 'WaitingForVolumeSnapshot',
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const waiting = await env.get<Backup>('backups', 'csi-run');
    const snapshotName = volumeSnapshotName(waiting as Backup, 0);
    assert.match(
      waiting?.status?.conditions?.find((c) => c.type === 'Succeeded')?.message ?? '',
      new RegExp(`VolumeSnapshot ${snapshotName} of PVC documents \\(class csi-snapclass\\) is not ready to use yet`),
    );
    const snapshot = JSON.parse(
      await env.cluster.kubectl(['get', 'volumesnapshot', snapshotName, '-n', env.namespace, '-o', 'json']),
    );
    assert.deepEqual(snapshot.spec, {
      volumeSnapshotClassName: 'csi-snapclass',
      source: { persistentVolumeClaimName: 'documents' },
    });
    const noJob = await env.cluster.kubectl([
      'get',
      'jobs',
      '-n',
      env.namespace,
      '-l',
      'tidemark.dev/backup=csi-run',
      '-o',
      'name',
    ]);
    assert.equal(noJob.trim(), '', 'no Job runs before the snapshot is ready');

    // Stand in for the CSI driver and snapshot controller: the restored volume holds the PVC's files,
    // and the snapshot turns ready.
    await cp(env.kubelet.claimDir(env.namespace, 'documents'), env.kubelet.claimDir(env.namespace, snapshotName), {
      recursive: true,
    });
    await env.cluster.kubectl([
      'patch',
      'volumesnapshot',
      snapshotName,
      '-n',
      env.namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { readyToUse: true, restoreSize: '1Gi' } }),
    ]);
    await waitUntil(
      'Backup csi-run succeeded',
      async () => {
        const status = (await env.get<Backup>('backups', 'csi-run'))?.status;
        if (status?.phase === 'Failed') throw new WaitFailed(`Backup csi-run failed: ${status.error}`);
        return status?.phase === 'Succeeded';
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const jobName = (await env.get<Backup>('backups', 'csi-run'))?.status?.jobName ?? '';
    const job = JSON.parse(
      await env.cluster.kubectl(['get', 'job', jobName, '-n', env.namespace, '-o', 'json']),
    ) as k8s.V1Job;
    const volumes = job.spec?.template.spec?.volumes?.filter((v) => v.persistentVolumeClaim) ?? [];
    assert.deepEqual(
      volumes.map((v) => v.persistentVolumeClaim),
      [{ claimName: snapshotName, readOnly: true }],
      'the agent read the restored PVC, read-only, not the live one',
    );
    const stored = await snapshotIds(env.namespace);
    assert.ok(stored.includes((await env.get<Backup>('backups', 'csi-run'))?.status?.snapshotId ?? ''));
    await waitUntil(
      'the VolumeSnapshot and the restored PVC are deleted',
      async () => {
        const left = JSON.parse(
          await env.cluster.kubectl([
            'get',
            'volumesnapshots,persistentvolumeclaims',
            '-n',
            env.namespace,
            '-l',
            'tidemark.dev/backup=csi-run',
            '-o',
            'json',
          ]),
        ) as { items: k8s.KubernetesObject[] };
        return left.items.every((o) => o.metadata?.deletionTimestamp);
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });
});
