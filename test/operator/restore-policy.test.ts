// What a RestoreRequest may do is the policy's to say (issue 11 findings 1 and 2), on the real control
// plane with a real PostgreSQL server. The policy lists where restores may write (qa_* databases on
// pg-main) and the post-restore scripts there are, each run as a role without superuser (anon). A
// request that still carries SQL of its own (`COPY ... TO PROGRAM`, a shell on the database server
// as the superuser of the connection Secret) gets it refused or pruned: it never runs. A policy script
// attempting the same runs as anon and fails with the server's permission error, changing nothing. The
// anonymise script runs as anon (current_user recorded). Targets outside the list, or a live source
// spelled as a Secret + database, are refused with TargetNotAllowed before any Job exists.
// SPEC R-RESTORE; issue 11.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { RestoreRequest } from '../../src/api/kinds.ts';
import { runOperator } from '../../src/operator/operator.ts';
import type { PostgresServer } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { AGENT_IMAGE, secretObject, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('restore-policy');
let env: TidemarkEnvironment;
let postgres: PostgresServer;
let api: k8s.CustomObjectsApi;
const stopOperator = new AbortController();
let operator: Promise<void>;
/**
 * Files a successful `COPY ... TO PROGRAM` would create: in /var/tmp, which the server's OS user may
 * write and which the kubelet stand-in does not map to a pod volume (as it does /tmp in env values).
 */
const pwned = (tag: string) => `/var/tmp/tidemark-pwned-${tag}-${randomBytes(6).toString('hex')}`;
const fromRequest = pwned('request');
const fromScript = pwned('script');
const anonPassword = randomBytes(12).toString('hex');

before(async () => {
  env = await startTidemarkEnvironment(workDir.path, { postgres: true });
  postgres = env.postgres as PostgresServer;
  api = env.cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  await postgres.psql(`create role anon login password '${anonPassword}'; create database acme`);
  await postgres.psql(
    `create table invoices (id serial primary key, customer text);
     insert into invoices (customer) select 'customer ' || g from generate_series(1, 50) g;
     create table script_runs (who text);`,
    'acme',
  );
  await env.apply([
    secretObject(env.namespace, 'pg-anon', {
      host: postgres.host,
      port: String(postgres.port),
      username: 'anon',
      password: anonPassword,
    }),
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'tenants', namespace: env.namespace },
      spec: {
        sources: [{ name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } }],
        schedule: { full: { every: '1h' }, suspend: true },
        repository: 'primary',
        restore: {
          targets: [{ postgres: { connectionSecret: { name: 'pg-main' }, databases: ['qa_*'] } }],
          postRestoreScripts: [
            {
              name: 'anonymise',
              sql: "update invoices set customer = 'anonymised'; insert into script_runs values (current_user)",
              runAs: { connectionSecret: { name: 'pg-anon' } },
            },
            {
              name: 'shell',
              sql: `copy (select 1) to program 'touch ${fromScript}'`,
              runAs: { connectionSecret: { name: 'pg-anon' } },
            },
          ],
        },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'acme-1', namespace: env.namespace },
      spec: { policy: 'tenants', source: 'acme-db', type: 'full' },
    },
  ]);
  operator = runOperator(
    env.cluster.kubeConfig,
    { settings: { image: AGENT_IMAGE, serviceAccountName: 'tidemark-agent' } },
    stopOperator.signal,
  );
  await waitUntil(
    'Backup acme-1 succeeded',
    async () => (await env.get<{ status?: { phase?: string } }>('backups', 'acme-1'))?.status?.phase === 'Succeeded',
    { timeoutMs: 90_000, intervalMs: 500 },
  );
});

after(async () => {
  stopOperator.abort();
  await operator?.catch(() => undefined);
  await env?.stop();
  for (const file of [fromRequest, fromScript]) rmSync(file, { force: true });
  workDir.remove();
});

const restoreRequest = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'tidemark.dev/v1alpha1',
  kind: 'RestoreRequest',
  metadata: { name, namespace: env.namespace },
  spec: { from: { backupName: 'acme-1' }, ...spec },
});

/** Created through the API without field validation, as a client that ignores warnings would. */
async function create(name: string, spec: Record<string, unknown>): Promise<void> {
  await api.createNamespacedCustomObject({
    group: 'tidemark.dev',
    version: 'v1alpha1',
    plural: 'restorerequests',
    namespace: env.namespace,
    body: restoreRequest(name, spec),
  });
}

async function ended(name: string, timeoutMs = 90_000): Promise<RestoreRequest> {
  let last: RestoreRequest | undefined;
  await waitUntil(
    `RestoreRequest ${name} ended`,
    async () => {
      last = await env.get<RestoreRequest>('restorerequests', name);
      return last?.status?.phase === 'Succeeded' || last?.status?.phase === 'Failed';
    },
    { timeoutMs, intervalMs: 500 },
  );
  return last as RestoreRequest;
}

const qa = (database: string) => ({ postgres: { connectionSecret: { name: 'pg-main' }, database } });
const databaseExists = async (name: string) =>
  (await postgres.psql(`select count(*) from pg_database where datname = '${name}'`)).trim() === '1';
const reason = (r: RestoreRequest) => r.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason;

describe('post-restore SQL only from the policy (finding 1)', () => {
  test('SQL in the request never runs: sent without field validation it is pruned, and kubectl refuses it as an unknown field', async () => {
    const spec = { target: qa('qa_old'), postRestoreSQL: `copy (select 1) to program 'touch ${fromRequest}'` };
    await create('old-field', spec);
    const done = await ended('old-field');
    assert.equal(existsSync(fromRequest), false, 'the command in the request never ran');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.error);
    const stored = await env.read<RestoreRequest>('restorerequests', 'old-field');
    assert.equal((stored.spec as Record<string, unknown>).postRestoreSQL, undefined, 'pruned by the API server');
    await assert.rejects(
      env.cluster.kubectl(['create', '-f', '-'], JSON.stringify(restoreRequest('old-field-kubectl', spec))),
      /unknown field "spec.postRestoreSQL"/,
    );
  });

  test('a policy script runs as its role: COPY TO PROGRAM fails with the permission error and changes nothing', async () => {
    await create('shell', { target: qa('qa_shell'), postRestoreScript: 'shell' });
    const done = await ended('shell');
    assert.equal(done.status?.phase, 'Failed');
    assert.match(done.status?.error ?? '', /post-restore SQL as role "anon" failed/);
    assert.match(done.status?.error ?? '', /pg_execute_server_program|superuser|permission denied/);
    assert.equal(existsSync(fromScript), false, 'no shell command ran on the server');
    assert.equal(await databaseExists('qa_shell'), false, 'target left as it was (absent)');
  });

  test('the anonymise script runs as anon on the restored copy, and anon keeps no grants on it', async () => {
    await create('anon', { target: qa('qa_anon'), postRestoreScript: 'anonymise' });
    const done = await ended('anon');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.error);
    assert.equal(await postgres.psql('select who from script_runs', 'qa_anon'), 'anon\n', 'current_user was anon');
    assert.equal(await postgres.psql("select count(*) from invoices where customer = 'anonymised'", 'qa_anon'), '50\n');
    assert.equal(await postgres.psql("select has_table_privilege('anon', 'invoices', 'update')", 'qa_anon'), 'f\n');
    assert.equal(await postgres.psql('select count(*) from script_runs', 'acme'), '0\n', 'the source untouched');
  });

  test('an unknown script name is refused, naming the scripts the policy has', async () => {
    await create('unknown-script', { target: qa('qa_x'), postRestoreScript: 'drop-everything' });
    const done = await ended('unknown-script', 20_000);
    assert.equal(reason(done), 'UnknownScript');
    assert.equal(
      done.status?.error,
      'policy tenants has no post-restore script drop-everything (it has: anonymise, shell)',
    );
    assert.equal(done.status?.jobName, undefined);
  });
});

describe('restore targets only from the policy (finding 2)', () => {
  test('a database outside the list, on another Secret, or the live source spelled as a target is refused before any Job', async () => {
    await env.apply([
      secretObject(env.namespace, 'pg-other', {
        host: postgres.host,
        port: String(postgres.port),
        username: postgres.user,
        password: postgres.password,
      }),
    ]);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'outside',
        qa('billing'),
        /postgres database billing \(Secret pg-main\) is not allowed: policy tenants allows restores into: postgres pg-main databases qa_\*$/,
      ],
      [
        'other-secret',
        { postgres: { connectionSecret: { name: 'pg-other' }, database: 'qa_y' } },
        /Secret pg-other\) is not allowed/,
      ],
      [
        'live-source',
        qa('acme'),
        /postgres database acme \(Secret pg-main\) is source acme-db of policy tenants: restoring over a live source needs target.original: true/,
      ],
      ['original', { original: true }, /the original source is not allowed: policy tenants allows restores into/],
    ];
    for (const [name, target] of cases) await create(name, { target, mode: 'replace' });
    for (const [name, , message] of cases) {
      const done = await ended(name, 20_000);
      assert.equal(done.status?.phase, 'Failed', name);
      assert.equal(reason(done), 'TargetNotAllowed', name);
      assert.match(done.status?.error ?? '', message);
      assert.equal(done.status?.jobName, undefined, `${name}: no Job`);
    }
    assert.equal(await databaseExists('billing'), false);
    assert.equal(await postgres.psql('select count(*) from invoices', 'acme'), '50\n', 'the live source untouched');
  });

  test('a database inside the list is restored', async () => {
    await create('inside', { target: qa('qa_inside') });
    const done = await ended('inside');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.error);
    assert.equal(await postgres.psql('select count(*) from invoices', 'qa_inside'), '50\n');
  });
});

describe('the live source under another Secret (issue 9, finding 4)', () => {
  test('a Secret naming the source server another way (localhost, not 127.0.0.1) is allowed by the policy, and the agent refuses it', async () => {
    assert.equal(postgres.host, '127.0.0.1');
    await env.apply([
      secretObject(env.namespace, 'pg-alias', {
        host: 'localhost',
        port: String(postgres.port),
        username: postgres.user,
        password: postgres.password,
      }),
    ]);
    const rule = { postgres: { connectionSecret: { name: 'pg-alias' }, databases: ['acme', 'qa_*'] } };
    await env.cluster.kubectl([
      ...['patch', 'backuppolicy', 'tenants', '-n', env.namespace, '--type=json'],
      ...['-p', JSON.stringify([{ op: 'add', path: '/spec/restore/targets/-', value: rule }])],
    ]);
    const alias = (database: string) => ({ postgres: { connectionSecret: { name: 'pg-alias' }, database } });
    await create('alias-live', { target: alias('acme'), mode: 'replace' });
    const refused = await ended('alias-live');
    assert.equal(refused.status?.phase, 'Failed');
    assert.match(
      refused.status?.error ?? '',
      /live database of source acme-db of policy tenants \(Secret pg-main\) .*needs target.original: true/,
    );
    assert.equal(await postgres.psql('select count(*) from invoices', 'acme'), '50\n', 'the live source untouched');
    assert.equal(
      await postgres.psql("select count(*) from pg_database where datname like 'tidemark_restore_%'"),
      '0\n',
    );
    // The same Secret for a database no source backs up restores as before.
    await create('alias-qa', { target: alias('qa_alias') });
    const done = await ended('alias-qa');
    assert.equal(done.status?.phase, 'Succeeded', done.status?.error);
  });
});
