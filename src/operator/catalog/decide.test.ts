// The re-import decision without a cluster: when a catalog Job runs, which Backups it re-creates.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { CatalogEntry } from '../../agent/tasks/catalog.ts';
import type { Backup, BackupRepository } from '../../api/kinds.ts';
import { IMPORTED_FROM } from '../backup/decide.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { s3Repository } from '../testing/objects.ts';
import {
  CATALOG_LABEL,
  type CatalogObserved,
  catalogJobName,
  decideCatalog,
  parseCatalog,
  SYNC_REQUESTED,
  SYNCED,
} from './decide.ts';

const ns = 'tenants';

function repository(annotations: Record<string, string> = {}): BackupRepository {
  const r = s3Repository('primary', ns);
  r.metadata = { ...r.metadata, uid: 'uid-primary', annotations };
  return r;
}

const entry = (id: string, source: string, time: string): CatalogEntry => ({
  id: id.repeat(64 / id.length),
  source,
  time,
  type: 'full',
  chainId: 'c'.repeat(64),
  logicalBytes: 2048,
  durationMs: 3000,
  objects: [{ name: '.', records: 3 }],
});

const CATALOG = [
  entry('b', `${ns}/docs/documents`, '2026-11-20T10:00:00.000Z'),
  entry('a', `${ns}/docs/documents`, '2026-11-20T09:00:00.000Z'),
  entry('d', 'file:///data', '2026-11-20T08:00:00.000Z'),
];

function job(outcome?: 'Complete' | 'Failed', ok = true): JobObserved {
  const j: k8s.V1Job = {
    metadata: { name: 'x', namespace: ns },
    status: outcome ? { conditions: [{ type: outcome, status: 'True' }] } : {},
  };
  return outcome
    ? {
        job: j,
        result: ok ? { ok: true, snapshots: 2 } : { ok: false, error: { code: 'WrongKey', message: 'wrong key' } },
      }
    : { job: j };
}

const observed = (over: Partial<CatalogObserved> = {}): CatalogObserved => ({
  repository: repository({ [SYNC_REQUESTED]: 'now' }),
  backups: [],
  settings: { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' },
  ...over,
});

describe('decideCatalog', () => {
  test('no request, or one already handled: nothing', () => {
    assert.deepEqual(decideCatalog(observed({ repository: repository() })), { createBackups: [], events: [] });
    const handled = repository({ [SYNC_REQUESTED]: 'now', [SYNCED]: 'now' });
    assert.deepEqual(decideCatalog(observed({ repository: handled })), { createBackups: [], events: [] });
  });

  test('a request runs the catalog Job for this namespace, writing to a ConfigMap the repository owns', () => {
    const d = decideCatalog(observed());
    const created = d.createJob;
    assert.equal(created?.metadata?.name, catalogJobName(repository(), 'now'));
    assert.equal(created?.metadata?.labels?.[CATALOG_LABEL], 'primary');
    assert.equal(created?.metadata?.labels?.['tidemark.dev/repository'], undefined, 'not taken for a probe');
    const env = Object.fromEntries(
      (created?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
    );
    assert.equal(env.TIDEMARK_CATALOG_PREFIX, `${ns}/`);
    assert.equal(env.TIDEMARK_CATALOG_CONFIGMAP, 'primary-catalog');
    assert.equal(JSON.parse(env.TIDEMARK_CATALOG_OWNER ?? '{}').uid, 'uid-primary');
    assert.deepEqual(created?.spec?.template.spec?.containers[0]?.args, ['agent', 'catalog']);
    assert.equal(created?.spec?.template.spec?.automountServiceAccountToken, true, 'it writes the ConfigMap');
    assert.equal(d.markSynced, undefined);
  });

  test('a running Job: wait', () => {
    assert.deepEqual(decideCatalog(observed({ job: job() })), { createBackups: [], events: [] });
  });

  test('done: a Succeeded Backup per policy snapshot no Backup names, oldest first, marked imported; the request is handled', () => {
    const existing: Backup = {
      apiVersion: 'tidemark.dev/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'kept', namespace: ns },
      spec: { policy: 'docs', source: 'documents' },
      status: { phase: 'Succeeded', snapshotId: 'b'.repeat(64) },
    };
    const d = decideCatalog(observed({ job: job('Complete'), catalog: CATALOG, backups: [existing] }));
    assert.equal(d.markSynced, 'now');
    assert.equal(d.createBackups.length, 1, 'b is named by a Backup; d was not made by a policy');
    const [imported] = d.createBackups;
    assert.equal(imported?.metadata.name, `docs-documents-${'a'.repeat(12)}`);
    assert.equal(imported?.metadata.annotations?.[IMPORTED_FROM], 'primary');
    assert.deepEqual(imported?.metadata.labels, { 'tidemark.dev/policy': 'docs', 'tidemark.dev/source': 'documents' });
    assert.deepEqual(imported?.spec, { policy: 'docs', source: 'documents', type: 'full' });
    const status = imported?.status;
    assert.equal(status?.phase, 'Succeeded');
    assert.equal(status?.snapshotId, 'a'.repeat(64));
    assert.equal(status?.startTime, '2026-11-20T09:00:00.000Z');
    assert.equal(status?.completionTime, '2026-11-20T09:00:03.000Z');
    assert.deepEqual(
      status?.repositories?.map((r) => [r.repository, r.role, r.state]),
      [['primary', 'primary', 'Succeeded']],
    );
    assert.equal(status?.conditions?.[0]?.reason, 'Imported');
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['BackupsImported'],
    );
  });

  test('a failed catalog Job: a Warning naming the cause, and the request counts as handled (set a new value to retry)', () => {
    const d = decideCatalog(observed({ job: job('Failed', false) }));
    assert.equal(d.markSynced, 'now');
    assert.deepEqual(d.createBackups, []);
    assert.match(d.events[0]?.message ?? '', /wrong key/);
    assert.equal(d.events[0]?.type, 'Warning');
  });
});

describe('parseCatalog: the ConfigMap is untrusted data', () => {
  const good = entry('ab', `${ns}/tenants/acme-db`, '2026-03-01T00:00:00Z');

  test('well-formed entries are kept as they are', () => {
    assert.deepEqual(parseCatalog(JSON.stringify([good])), [good]);
  });

  test('entries of the wrong shape are dropped, extra fields are not carried', () => {
    const text = JSON.stringify([
      { ...good, id: '../../etc' },
      { ...good, type: 'superuser' },
      { ...good, time: 'yesterday' },
      { ...good, logicalBytes: -1 },
      'not an object',
      null,
      { ...good, approvals: [{ user: 'mallory' }] },
    ]);
    assert.deepEqual(parseCatalog(text), [good]);
  });

  test('anything but a list is refused', () => {
    assert.throws(() => parseCatalog('{"id": "ab"}'), /does not hold a list of snapshots/);
  });
});
