import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveSourceEnv, targetAccess } from '../jobs/access.ts';

test('the host and port of each possible live source come from its Secret, optional, so the pod never waits on it', () => {
  assert.deepEqual(liveSourceEnv([{ name: 'source db of policy p', connectionSecret: 'pg-main' }]), [
    { name: 'TIDEMARK_LIVE_SOURCE_0_NAME', value: 'source db of policy p (Secret pg-main)' },
    {
      name: 'TIDEMARK_LIVE_SOURCE_0_HOST',
      valueFrom: { secretKeyRef: { name: 'pg-main', key: 'host', optional: true } },
    },
    {
      name: 'TIDEMARK_LIVE_SOURCE_0_PORT',
      valueFrom: { secretKeyRef: { name: 'pg-main', key: 'port', optional: true } },
    },
  ]);
});

test('a database target carries its TLS settings to the agent', () => {
  const access = targetAccess({
    kind: 'database',
    engine: 'mysql',
    connectionSecret: 'mariadb-qa',
    database: 'qa_1',
    tls: { mode: 'require', clientCertificateSecret: { name: 'agent-cert' } },
  });
  const names = access.env.map((e) => e.name);
  assert.ok(names.includes('TIDEMARK_DB_TLS_CERT') && names.includes('TIDEMARK_DB_TLS_KEY'));
  assert.equal(access.env.find((e) => e.name === 'TIDEMARK_DB_TLS_MODE')?.value, 'require');
  assert.deepEqual(access.env.find((e) => e.name === 'MYSQL_PWD')?.valueFrom, {
    secretKeyRef: { name: 'mariadb-qa', key: 'password', optional: true },
  });
  assert.deepEqual(
    access.volumes.map((v) => v.secret?.secretName),
    ['agent-cert'],
  );
});
