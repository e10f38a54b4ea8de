// A policy source and a restore target configured as in production (issue 9, "Connections"): a
// PostgreSQL 18 server that admits the agent only over TLS with a client certificate and asks no
// password; the CA and the certificate come from Secrets the agent pod mounts (the operator reads
// none); the connection Secret has no password key. Real control plane, process kubelet, the agent
// with the newest client tools on its PATH, as in the image.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Backup, RestoreRequest } from '../../src/api/kinds.ts';
import { runOperator } from '../../src/operator/operator.ts';
import { type PostgresServer, startPostgres, testPostgresBin, testPostgresClientBin } from '../harness/postgres.ts';
import { waitUntil } from '../harness/process.ts';
import { AGENT_IMAGE, secretObject, startTidemarkEnvironment, type TidemarkEnvironment } from '../harness/tidemark.ts';
import { makeCertificates } from '../harness/tls.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('database-tls');
const CERT_USER = 'tidemark_agent';
let env: TidemarkEnvironment;
let pg: PostgresServer;
const stopOperator = new AbortController();
let operator: Promise<void>;

before(async () => {
  // The kubelet stand-in gives pods its own PATH: the image's pg_dump 18 comes first there.
  process.env.PATH = [testPostgresClientBin(), process.env.PATH ?? ''].join(delimiter);
  const certificates = await makeCertificates(join(workDir.path, 'tls'), CERT_USER);
  [pg, env] = await Promise.all([
    startPostgres(workDir.path, { binDir: testPostgresBin(18), tls: { certificates, certUser: CERT_USER } }),
    startTidemarkEnvironment(workDir.path),
  ]);
  await pg.psql('create database shop');
  await pg.psql(
    "create table orders (id int primary key, item text); insert into orders select g, 'item ' || g from generate_series(1, 200) g",
    'shop',
  );
  const tls = {
    mode: 'verify-full',
    caSecret: { name: 'db-ca' },
    clientCertificateSecret: { name: 'agent-cert' },
  };
  await env.apply([
    secretObject(env.namespace, 'pg-shop', { host: '127.0.0.1', port: String(pg.port), username: CERT_USER }),
    secretObject(env.namespace, 'db-ca', { 'ca.crt': readFileSync(certificates.ca, 'utf8') }),
    {
      ...secretObject(env.namespace, 'agent-cert', {
        'tls.crt': readFileSync(certificates.clientCert, 'utf8'),
        'tls.key': readFileSync(certificates.clientKey, 'utf8'),
      }),
      type: 'kubernetes.io/tls',
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'BackupPolicy',
      metadata: { name: 'shop', namespace: env.namespace },
      spec: {
        sources: [
          {
            name: 'db',
            postgres: { connectionSecret: { name: 'pg-shop' }, databases: ['shop'], tls, lockWaitTimeout: '1m' },
          },
        ],
        schedule: { full: { every: '1h' }, suspend: true },
        repository: 'primary',
        restore: { targets: [{ postgres: { connectionSecret: { name: 'pg-shop' }, databases: ['shop_*'] } }] },
      },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'shop-1', namespace: env.namespace },
      spec: { policy: 'shop', source: 'db', type: 'full' },
    },
    {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name: 'shop-copy', namespace: env.namespace },
      spec: {
        from: { backupName: 'shop-1' },
        target: { postgres: { connectionSecret: { name: 'pg-shop' }, database: 'shop_copy', tls } },
      },
    },
  ]);
  operator = runOperator(
    env.cluster.kubeConfig,
    { settings: { image: AGENT_IMAGE, serviceAccountName: 'tidemark-agent' } },
    stopOperator.signal,
  );
});

after(async () => {
  stopOperator.abort();
  await operator?.catch(() => undefined);
  await Promise.all([env?.stop(), pg?.stop()]);
  workDir.remove();
});

test('a backup and a restore over TLS, authenticated by a client certificate from a Secret, without a password', async () => {
  let backup: Backup | undefined;
  await waitUntil(
    'Backup shop-1 ended',
    async () => {
      backup = await env.get<Backup>('backups', 'shop-1');
      return backup?.status?.phase === 'Succeeded' || backup?.status?.phase === 'Failed';
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  assert.equal(backup?.status?.phase, 'Succeeded', backup?.status?.error);
  assert.deepEqual(backup?.status?.objects, [{ name: 'public.orders', records: 200 }]);
  let restore: RestoreRequest | undefined;
  await waitUntil(
    'RestoreRequest shop-copy ended',
    async () => {
      restore = await env.get<RestoreRequest>('restorerequests', 'shop-copy');
      return restore?.status?.phase === 'Succeeded' || restore?.status?.phase === 'Failed';
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  assert.equal(restore?.status?.phase, 'Succeeded', restore?.status?.error);
  const sum = (db: string) =>
    pg.psql("select count(*) || ':' || md5(string_agg(item, ',' order by id)) from orders", db);
  assert.equal(await sum('shop_copy'), await sum('shop'));
  const connections = await pg.psql(`select count(*) from pg_stat_activity where usename = '${CERT_USER}'`);
  assert.equal(connections.trim(), '0');
});
