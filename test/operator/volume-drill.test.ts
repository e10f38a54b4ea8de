// Restore drills of a volume source on the real control plane (issue 13): a policy backs up a PVC's
// files into a filesystem repository and drills every 15 s. A drill restores the backup into a scratch
// PVC the operator creates for it (the process kubelet maps it to a directory), re-reads every file
// against the snapshot, reports its RTO, and the operator deletes the scratch PVC afterwards; a drill
// of a backup whose packs were damaged fails and Restorable turns False. The source files stay as
// they were throughout. SPEC R-VERIFY.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Backup, BackupPolicy } from '../../src/api/kinds.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type ManagedProcess, waitUntil } from '../harness/process.ts';
import { PASSPHRASE, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('volume-drill');
let env: TidemarkEnvironment;
let operator: ManagedProcess;
let repositoryPath: string;
let sourcePath: string;
let sourceDigest: string;

/** Every path and content under a directory, hashed: the source must stay as it was. */
async function digest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      hash.update(`${path}\n`);
      if (entry.isDirectory()) await walk(path);
      else hash.update(await readFile(path));
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

const policy = () => env.read<BackupPolicy>('backuppolicies', 'tenants');
const drillOf = async () => (await policy()).status?.sources?.find((s) => s.name === 'documents')?.lastDrill;
const restorable = async () =>
  (await env.read<Backup>('backups', 'docs-now')).status?.conditions?.find((c) => c.type === 'Restorable');

/** The names of the drills' scratch PVCs that exist now. */
async function scratchClaims(): Promise<string[]> {
  const core = env.cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const claims = await core.listNamespacedPersistentVolumeClaim({
    namespace: env.namespace,
    labelSelector: 'tidemark.dev/drill-scratch=tenants',
  });
  return claims.items.map((c) => c.metadata?.name ?? '');
}

before(async () => {
  env = await startTidemarkEnvironment(workDir.path);
  const { namespace } = env;
  sourcePath = env.kubelet.claimDir(namespace, 'documents');
  await mkdir(join(sourcePath, 'letters'), { recursive: true });
  await writeFile(join(sourcePath, 'readme.txt'), 'the documents volume\n');
  await writeFile(join(sourcePath, 'letters', 'a.txt'), 'dear a,\n'.repeat(2000));
  await writeFile(join(sourcePath, 'letters', 'b.bin'), Buffer.alloc(300_000, 7));
  sourceDigest = await digest(sourcePath);
  repositoryPath = env.kubelet.claimDir(namespace, 'repository-volume');
  await mkdir(repositoryPath, { recursive: true });
  await Repository.init(openStorage(`file://${repositoryPath}`, {}), Buffer.from(PASSPHRASE), {
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const claim = (name: string) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });
  await env.apply([
    claim('repository-volume'),
    claim('documents'),
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupRepository',
      metadata: { name: 'files', namespace },
      spec: {
        provider: 'filesystem',
        filesystem: { path: '/repository', claimName: 'repository-volume' },
        region: 'us-east-1',
        encryptionKeySecret: { name: 'repository-passphrase' },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'tenants', namespace },
      spec: {
        sources: [{ name: 'documents', volume: { claimName: 'documents' } }],
        // Suspended: the only Backup is the on-demand one below.
        schedule: { full: { every: '1h' }, suspend: true },
        repository: 'files',
        objectives: { rto: '15m' },
        verification: { restoreDrill: { every: '15s' } },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'docs-now', namespace },
      spec: { policy: 'tenants', source: 'documents', type: 'full' },
    },
  ]);
  operator = env.startOperator('operator', ['--pod-start-timeout', '20']);
});

after(async () => {
  await env?.stop();
  workDir.remove();
});

describe('restore drills of volume sources', () => {
  test('a drill restores into a scratch PVC of its own, verifies every file, reports its RTO, and the PVC is deleted', async () => {
    await waitUntil('a successful drill of docs-now', async () => (await drillOf())?.result === 'Succeeded', {
      timeoutMs: 180_000,
      intervalMs: 1000,
      process: operator,
    });
    const drill = await drillOf();
    assert.equal(drill?.backup, 'docs-now');
    assert.equal(typeof drill?.rtoSeconds, 'number');
    assert.equal(drill?.rtoTargetSeconds, 900);
    assert.match(
      drill?.message ?? '',
      /into a scratch PVC and found its 3 files \(\d+ bytes\).*within the 900s RTO target/,
    );
    assert.equal((await restorable())?.status, 'True');
    // The drill wrote into its own scratch PVC (named as its Job), whose directory the process kubelet
    // keeps after the PVC is deleted: the restored tree is there.
    assert.equal(
      await readFile(join(env.kubelet.claimDir(env.namespace, drill?.job ?? ''), 'tree', 'readme.txt'), 'utf8'),
      'the documents volume\n',
    );
    await waitUntil(
      `the scratch PVC ${drill?.job} deleted`,
      async () => !(await scratchClaims()).includes(drill?.job ?? ''),
      { timeoutMs: 30_000, intervalMs: 500, process: operator },
    );
    assert.equal(await digest(sourcePath), sourceDigest);
  });

  test('a drill of a damaged backup fails, Restorable turns False, and its scratch PVC is deleted', async () => {
    const packs: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }))
        if (entry.isDirectory()) await walk(join(dir, entry.name));
        else packs.push(join(dir, entry.name));
    };
    await walk(join(repositoryPath, 'data'));
    assert.ok(packs.length > 0);
    for (const pack of packs) {
      const bytes = await readFile(pack);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
      await writeFile(pack, bytes);
    }
    await waitUntil('a failed drill of the damaged backup', async () => (await drillOf())?.result === 'Failed', {
      timeoutMs: 120_000,
      intervalMs: 1000,
      process: operator,
    });
    const drill = await drillOf();
    assert.equal(drill?.backup, 'docs-now');
    assert.match(drill?.message ?? '', /\((Corrupt|VerificationFailed)\)/);
    const condition = await restorable();
    assert.equal(condition?.status, 'False', JSON.stringify(drill));
    assert.equal(condition?.reason, 'DrillFailed');
    await waitUntil(
      `the failed drill's scratch PVC ${drill?.job} deleted`,
      async () => !(await scratchClaims()).includes(drill?.job ?? ''),
      { timeoutMs: 30_000, intervalMs: 500, process: operator },
    );
    assert.equal(await digest(sourcePath), sourceDigest);
  });
});
