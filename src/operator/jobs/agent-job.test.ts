import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Source } from '../../api/backuppolicy.ts';
import type { Backup } from '../../api/kinds.ts';
import { logFields } from '../../log.ts';
import { sourceAccess, TLS_MOUNT } from './access.ts';
import { agentJob } from './agent-job.ts';

test('a database source reaches the agent with TLS files mounted from Secrets, an optional password and its lock wait', () => {
  const source: Source = {
    name: 'shop',
    postgres: {
      connectionSecret: { name: 'pg-shop' },
      databases: ['shop'],
      tls: {
        mode: 'verify-full',
        caSecret: { name: 'db-ca', key: 'root.pem' },
        clientCertificateSecret: { name: 'tidemark-client-cert' },
      },
      lockWaitTimeout: '90s',
    },
  };
  const access = sourceAccess(source, []);
  const env = Object.fromEntries((access.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.deepEqual(env.PGPASSWORD, { secretKeyRef: { name: 'pg-shop', key: 'password', optional: true } });
  assert.equal(env.TIDEMARK_DB_TLS_MODE, 'verify-full');
  assert.equal(env.TIDEMARK_DB_TLS_CA, `${TLS_MOUNT}/db-tls-ca/ca.crt`);
  assert.equal(env.TIDEMARK_DB_TLS_CERT, `${TLS_MOUNT}/db-tls-client/tls.crt`);
  assert.equal(env.TIDEMARK_DB_TLS_KEY, `${TLS_MOUNT}/db-tls-client/tls.key`);
  assert.equal(env.TIDEMARK_LOCK_WAIT_TIMEOUT, '90s');
  assert.deepEqual(access.volumes, [
    {
      name: 'db-tls-ca',
      secret: { secretName: 'db-ca', items: [{ key: 'root.pem', path: 'ca.crt' }], defaultMode: 0o440 },
    },
    {
      name: 'db-tls-client',
      secret: {
        secretName: 'tidemark-client-cert',
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
        defaultMode: 0o440,
      },
    },
  ]);
  assert.ok(access.volumeMounts.every((m) => m.readOnly && m.mountPath.startsWith(`${TLS_MOUNT}/`)));
});

test('without tls nothing is mounted and no TLS variable is set', () => {
  const access = sourceAccess({ name: 'm', mysql: { connectionSecret: { name: 'my' }, allDatabases: true } }, []);
  assert.deepEqual(access.volumes, []);
  assert.ok(
    !(access.env ?? []).some((e) => e.name.startsWith('TIDEMARK_DB_TLS') || e.name === 'TIDEMARK_LOCK_WAIT_TIMEOUT'),
  );
});

test("a database source carries the policy's timestamp columns (backups record them, audits compare them); a volume none", () => {
  const columns = { 'public.orders': 'placed' };
  const env = (source: Parameters<typeof sourceAccess>[0]) =>
    (sourceAccess(source, ['documents'], undefined, columns).env ?? []).find(
      (e) => e.name === 'TIDEMARK_TIMESTAMP_COLUMNS',
    )?.value;
  assert.equal(
    env({ name: 'db', postgres: { connectionSecret: { name: 'pg' }, databases: ['shop'] } }),
    '{"public.orders":"placed"}',
  );
  assert.equal(env({ name: 'docs', volume: { claimName: 'documents' } }), undefined);
});

test('an agent Job tells the agent what it works for, so its log lines carry namespace, policy, source and backup', () => {
  const backup: Backup = {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'Backup',
    metadata: { name: 'nightly-documents-full-20260330t0100z', namespace: 'tenants', uid: 'u1' },
    spec: { policy: 'nightly', source: 'documents', type: 'full' },
  };
  const job = agentJob({
    backup,
    policy: undefined,
    task: 'backup',
    name: 'job',
    settings: { image: 'tidemark', serviceAccountName: 'tidemark-agent' },
    env: [],
    envFrom: [],
    volumes: [],
    volumeMounts: [],
  });
  const env = job.spec?.template.spec?.containers[0]?.env ?? [];
  const fields = env.find((e) => e.name === 'TIDEMARK_LOG_FIELDS')?.value;
  assert.deepEqual(logFields(fields), {
    namespace: 'tenants',
    backup: 'nightly-documents-full-20260330t0100z',
    policy: 'nightly',
    source: 'documents',
  });
});
