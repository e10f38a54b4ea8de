// RestoreRequests end to end on the real control plane: a policy with a PostgreSQL tenant database,
// primary on the S3 server, replica on Azurite, an approval rule and an RTO objective. One on-demand
// Backup is taken and replicated; a developer's request restores it into a new QA database (one the
// policy lists) with the policy's anonymise script once someone else in the approver group approved it (the admission policy of
// deploy/ enforces who may approve); with the S3 server stopped a second request falls back to the
// replica.
// SPEC R-RESTORE, R-OBJ.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Backup, RestoreRequest } from '../../src/api/kinds.ts';
import { runOperator } from '../../src/operator/operator.ts';
import { approveAs, installFourEyes, kubectlAs } from '../harness/four-eyes.ts';
import type { PostgresServer } from '../harness/postgres.ts';
import { AGENT_IMAGE, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const namespace = 'tenants';
const ANONYMISE = "update invoices set customer = 'customer ' || id::text || ' (anonymised)'";
/** A requester, a colleague outside the approver group, and an on-call approver. */
const A = { user: 'dev@acme.example', groups: ['developers'] };
const B = { user: 'colleague@acme.example', groups: ['developers'] };
const C = { user: 'oncall@acme.example', groups: ['platform-oncall'] };
const workDir = makeWorkDir('restore-request');
let env: TidemarkEnvironment;
let cluster: TidemarkEnvironment['cluster'];
let s3: TidemarkEnvironment['s3'];
let postgres: PostgresServer;
let api: k8s.CustomObjectsApi;
const stopOperator = new AbortController();
let operator: Promise<void>;

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { azurite: true, postgres: true });
  ({ cluster, s3 } = env);
  postgres = env.postgres as PostgresServer;
  api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  await postgres.psql('create database acme');
  await postgres.psql(
    'create table invoices (id serial primary key, customer text, total int); insert into invoices (customer, total) select $$customer $$ || g, g from generate_series(1, 5000) g;',
    'acme',
  );
  await env.apply([
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'tenants', namespace },
      spec: {
        sources: [{ name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } }],
        // Suspended: the only Backup is the on-demand one below, so "latest" is known.
        schedule: { full: { every: '1h' }, suspend: true },
        repository: 'primary',
        replicas: [{ repository: 'replica', region: 'westeurope' }],
        objectives: { rpo: '1h', rto: '15m' },
        restore: {
          approval: { required: 1, approverGroups: ['platform-oncall'] },
          targets: [{ postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme_qa*'] } }],
          // The restore user of pg-main, a superuser, by explicit choice (restore-policy.test.ts runs scripts as a role).
          postRestoreScripts: [{ name: 'anonymise', sql: ANONYMISE, runAsRestoreUser: true }],
        },
        allowedRegions: ['us-east-1', 'westeurope'],
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'acme-on-demand', namespace },
      spec: { policy: 'tenants', source: 'acme-db', type: 'full' },
    },
  ]);
  await installFourEyes(cluster, namespace, [A, B, C]);
  operator = runOperator(
    cluster.kubeConfig,
    // A short storage retry budget, so that the restore from the stopped primary fails soon and falls back.
    { settings: { image: AGENT_IMAGE, serviceAccountName: 'tidemark-agent', retryBudget: '10s' } },
    stopOperator.signal,
  );
});

after(async () => {
  stopOperator.abort();
  await operator?.catch(() => undefined);
  await env?.stop();
  workDir.remove();
});

async function get<T>(plural: string, name: string): Promise<T> {
  return (await api.getNamespacedCustomObject({
    group: 'tidemark.dev',
    version: 'v1alpha1',
    plural,
    namespace,
    name,
  })) as T;
}

/** Polls until `done` holds; fails at once when the object reports Failed. */
async function waitFor<T extends { status?: { phase?: string; error?: string } }>(
  plural: string,
  name: string,
  done: (object: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get<T>(plural, name).catch(() => undefined);
    if (last?.status?.phase === 'Failed') throw new Error(`${plural} ${name} failed: ${last.status.error}`);
    if (last && done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${plural} ${name}: not done after ${timeoutMs} ms; last status ${JSON.stringify(last?.status)}`);
}

function restoreRequest(name: string, spec: Record<string, unknown>) {
  return stringify({
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'RestoreRequest',
    metadata: { name, namespace },
    spec,
  });
}

async function eventReasons(name: string): Promise<string[]> {
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => e.reason ?? '');
}

/** What an approver does: add their own approval once the request waits for it (the admission policy's flow). */
async function approve(name: string, approver: typeof A): Promise<void> {
  await waitFor<RestoreRequest>('restorerequests', name, (r) => r.status?.phase === 'PendingApproval', 20_000);
  await approveAs(cluster, approver, namespace, name, [{ user: approver.user, comment: 'QA copy' }]);
}

/** Creates a RestoreRequest as `person`, who must be its requester (the admission policy checks). */
async function requestRestore(person: typeof A, name: string, spec: Record<string, unknown>): Promise<void> {
  await kubectlAs(cluster, person, ['create', '-f', '-'], restoreRequest(name, { ...spec, requestedBy: person.user }));
}

describe('restore requests end to end', () => {
  let backup: Backup;

  before(async () => {
    backup = await waitFor<Backup>(
      'backups',
      'acme-on-demand',
      (b) => b.status?.phase === 'Succeeded' && (b.status.repositories ?? []).every((r) => r.state === 'Succeeded'),
      90_000,
    );
    assert.deepEqual(backup.status?.objects, [{ name: 'public.invoices', records: 5000 }]);
  });

  test('A requests; neither A nor B outside the group can approve; once C in the group approves it restores into a new database with the policy post-restore script and records the RTO', async () => {
    await requestRestore(A, 'acme-qa', {
      from: { backupName: 'acme-on-demand' },
      target: { postgres: { connectionSecret: { name: 'pg-main' }, database: 'acme_qa' } },
      postRestoreScript: 'anonymise',
    });
    const pending = await waitFor<RestoreRequest>(
      'restorerequests',
      'acme-qa',
      (r) => r.status?.phase === 'PendingApproval',
      20_000,
    );
    assert.equal(pending.status?.approvalSummary, '0/1');
    assert.deepEqual(pending.status?.approverGroups, ['platform-oncall']);
    assert.equal(pending.status?.backupName, 'acme-on-demand');
    assert.equal(pending.status?.jobName, undefined, 'no Job before approval');

    await assert.rejects(approve('acme-qa', A), /the requester cannot approve their own restore/);
    await assert.rejects(approve('acme-qa', B), new RegExp(`${B.user} cannot approve: not among the approvers`));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const still = await get<RestoreRequest>('restorerequests', 'acme-qa');
    assert.equal(still.status?.phase, 'PendingApproval', 'refused approvals change nothing');
    assert.equal(still.status?.jobName, undefined);
    assert.deepEqual(still.spec.approvals ?? [], []);

    await approve('acme-qa', C);
    const done = await waitFor<RestoreRequest>(
      'restorerequests',
      'acme-qa',
      (r) => r.status?.phase === 'Succeeded',
      90_000,
    );
    const status = done.status ?? {};
    assert.equal(status.repository, 'primary');
    assert.equal(status.approvalSummary, '1/1');
    assert.deepEqual(status.approvedBy, [C.user]);
    assert.deepEqual(status.restored, backup.status?.objects);
    assert.deepEqual(status.expected, backup.status?.objects);
    assert.ok(status.startTime && status.completionTime);
    assert.ok(typeof status.rtoSeconds === 'number' && status.rtoSeconds >= 0);
    assert.match(status.achievedRTO ?? '', /^\d+[dhms]/);
    const conditions = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]));
    assert.deepEqual(conditions, { Approved: 'True', Resolved: 'True', RTOMet: 'True', Succeeded: 'True' });

    assert.equal(await postgres.psql('select count(*) from invoices', 'acme_qa'), '5000\n');
    assert.equal(
      await postgres.psql("select count(*) from invoices where customer like '%(anonymised)'", 'acme_qa'),
      '5000\n',
      'the post-restore script ran',
    );
    assert.equal(
      await postgres.psql("select count(*) from invoices where customer like '%(anonymised)'", 'acme'),
      '0\n',
    );
    assert.deepEqual((await eventReasons('acme-qa')).filter((r) => r.startsWith('Restore')).sort(), [
      'RestoreApproved',
      'RestorePendingApproval',
      'RestoreStarted',
      'RestoreSucceeded',
    ]);
    assert.match(await cluster.kubectl(['get', 'restore', '-n', namespace]), /acme-qa\s+Succeeded\s+acme-on-demand/);
  });

  test('with the primary down it falls back to the replica', async () => {
    await s3.stop();
    await requestRestore(A, 'acme-qa2', {
      from: { policy: 'tenants', source: 'acme-db' },
      target: { postgres: { connectionSecret: { name: 'pg-main' }, database: 'acme_qa2' } },
    });
    await approve('acme-qa2', C);
    const done = await waitFor<RestoreRequest>(
      'restorerequests',
      'acme-qa2',
      (r) => r.status?.phase === 'Succeeded',
      120_000,
    );
    assert.equal(done.status?.backupName, 'acme-on-demand', 'latest of policy + source');
    assert.equal(done.status?.repository, 'replica');
    assert.deepEqual(done.status?.restored, backup.status?.objects);
    assert.ok(done.status?.achievedRTO);
    assert.equal(await postgres.psql('select count(*) from invoices', 'acme_qa2'), '5000\n');
    const reasons = await eventReasons('acme-qa2');
    assert.ok(reasons.includes('RestoreFellBackToReplica'), reasons.join(', '));
  });
});
