import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { makeWorkDir } from '../harness/workdir.ts';
import { exampleFiles, loadExample, type Manifest } from './manifests.ts';

let cluster: Cluster;
let objects: k8s.KubernetesObjectApi;
const workDir = makeWorkDir('crds');

before(async () => {
  cluster = await startCluster(workDir.path);
  objects = k8s.KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  for (const name of ['tenants', 'invalid']) await core.createNamespace({ body: { metadata: { name } } });
});

after(async () => {
  await cluster?.stop();
  workDir.remove();
});

describe('examples/', () => {
  for (const file of exampleFiles()) {
    test(`${file} is accepted by the API server and reads back unchanged`, async () => {
      const manifest = loadExample(file);
      await objects.create(manifest);
      const stored = (await objects.read({
        apiVersion: manifest.apiVersion,
        kind: manifest.kind,
        metadata: { name: manifest.metadata?.name ?? '', namespace: manifest.metadata?.namespace ?? '' },
      })) as Manifest;
      assertContains(stored.spec, manifest.spec, 'spec');
    });
  }
});

/** Every field of `expected` is in `actual` with the same value; the server may add defaults. */
function assertContains(actual: unknown, expected: unknown, path: string): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual && typeof actual === 'object', `${path} missing`);
    for (const [key, value] of Object.entries(expected))
      assertContains((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${path} length`);
    expected.forEach((item, i) => {
      assertContains((actual as unknown[])[i], item, `${path}[${i}]`);
    });
  } else {
    assert.deepEqual(actual, expected, path);
  }
}

interface InvalidCase {
  name: string;
  example: string;
  mutate: (m: Manifest) => void;
  /** The field the message must name, as the API server prints it. */
  field: string;
  /** Words the message must contain. */
  says: string;
}

// biome-ignore lint/suspicious/noExplicitAny: test cases reach deep into example manifests to break them
type Spec = Record<string, any>;
const spec = (m: Manifest) => m.spec as Spec;

const invalidOnCreate: InvalidCase[] = [
  {
    name: 'repository: provider s3 without s3 block',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      delete spec(m).s3;
    },
    field: 'spec.s3',
    says: 'provider s3 needs an s3 block',
  },
  {
    name: 'repository: unknown provider',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      spec(m).provider = 'gcs';
    },
    field: 'spec.provider',
    says: 'Unsupported value: "gcs"',
  },
  {
    name: 'repository: two location blocks',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      spec(m).filesystem = { path: '/x' };
    },
    field: 'spec',
    says: 'set exactly one of s3, azureBlob or filesystem',
  },
  {
    name: 'repository: s3 without credentials',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      delete spec(m).credentialsSecret;
    },
    field: 'spec.credentialsSecret',
    says: 'credentialsSecret is required',
  },
  {
    name: 'repository: no encryption key (encryption cannot be turned off)',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      delete spec(m).encryptionKeySecret;
    },
    field: 'spec.encryptionKeySecret',
    says: 'Required value',
  },
  {
    name: 'repository: relative filesystem path',
    example: 'backuprepository-filesystem.yaml',
    mutate: (m) => {
      spec(m).filesystem.path = 'backups';
    },
    field: 'spec.filesystem.path',
    says: 'must be absolute',
  },
  {
    name: 'repository: immutability period in words',
    example: 'backuprepository-s3.yaml',
    mutate: (m) => {
      spec(m).immutability.period = '2 weeks';
    },
    field: 'spec.immutability.period',
    says: 'must be a duration',
  },
  {
    name: 'policy: cron with four fields',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.full.cron = '0 2 * *';
    },
    field: 'spec.schedule.full.cron',
    says: '5-field cron expression',
  },
  {
    name: 'policy: both cron and every',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.full.every = '7d';
    },
    field: 'spec.schedule.full',
    says: 'exactly one of cron or every',
  },
  {
    name: 'policy: neither cron nor every',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.incremental = {};
    },
    field: 'spec.schedule.incremental',
    says: 'exactly one of cron or every',
  },
  {
    name: 'policy: interval that does not parse',
    example: 'backuppolicy-every-other-week.yaml',
    mutate: (m) => {
      spec(m).schedule.full.every = '14 days';
    },
    field: 'spec.schedule.full.every',
    says: 'must be a duration',
  },
  {
    name: 'policy: anchor with a cron trigger',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.full.anchor = '2026-01-01T00:00:00Z';
    },
    field: 'spec.schedule.full.anchor',
    says: 'anchor only applies to an every interval',
  },
  {
    name: 'policy: anchor that is not a time',
    example: 'backuppolicy-every-other-week.yaml',
    mutate: (m) => {
      spec(m).schedule.full.anchor = 'next monday';
    },
    field: 'spec.schedule.full.anchor',
    says: 'date-time',
  },
  {
    name: 'policy: retention keeps no full backup',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).retention.keepLastFull = 0;
    },
    field: 'spec.retention.keepLastFull',
    says: 'at least one full backup',
  },
  {
    name: 'policy: replica retention keeps no full backup',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).replicas[0].retention.keepLastFull = 0;
    },
    field: 'spec.replicas[0].retention.keepLastFull',
    says: 'at least one full backup',
  },
  {
    name: 'policy: replica is the primary',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).replicas[0].repository = 'primary-eu';
    },
    field: 'spec.replicas',
    says: 'must not be the primary',
  },
  {
    name: 'policy: replica region outside allowedRegions',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).replicas[0].region = 'us-east-1';
    },
    field: 'spec.replicas',
    says: 'allowedRegions (data residency)',
  },
  {
    name: 'policy: zero RPO',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).objectives.rpo = '0m';
    },
    field: 'spec.objectives.rpo',
    says: 'longer than zero',
  },
  {
    name: 'policy: RTO without unit',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).objectives.rto = '3600';
    },
    field: 'spec.objectives.rto',
    says: 'must be a duration',
  },
  {
    name: 'policy: source of two kinds',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).sources[0].volume = { claimName: 'x' };
    },
    field: 'spec.sources[0]',
    says: 'exactly one of postgres, mysql or volume',
  },
  {
    name: 'policy: database source naming no database',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      delete spec(m).sources[0].postgres.databases;
    },
    field: 'spec.sources[0].postgres',
    says: 'databases (a list) or allDatabases',
  },
  {
    name: 'policy: volume source with claim and selector',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).sources[2].volume.claimName = 'docs';
    },
    field: 'spec.sources[2].volume',
    says: 'exactly one of claimName or selector',
  },
  {
    name: 'policy: source name in upper case',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).sources[0].name = 'Acme_DB';
    },
    field: 'spec.sources[0].name',
    says: 'RFC 1123 label',
  },
  {
    name: 'policy: two sources with one name',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).sources[1].name = 'acme-db';
    },
    field: 'spec.sources[1]',
    says: 'Duplicate value',
  },
  {
    name: 'policy: no sources',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).sources = [];
    },
    field: 'spec.sources',
    says: 'should have at least 1 items',
  },
  {
    name: 'policy: window start out of range',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.window.start = '25:00';
    },
    field: 'spec.schedule.window.start',
    says: 'HH:MM',
  },
  {
    name: 'policy: time zone with spaces',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).schedule.timeZone = 'Central European Time';
    },
    field: 'spec.schedule.timeZone',
    says: 'IANA time zone',
  },
  {
    name: 'policy: approval without approvers',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      delete spec(m).restore.approval.approverGroups;
    },
    field: 'spec.restore.approval',
    says: 'needs approverGroups or approverUsers',
  },
  {
    name: 'policy: restore target of two kinds',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).restore.targets[1].volume = { claimNames: ['x'] };
    },
    field: 'spec.restore.targets[1]',
    says: 'exactly one of original, postgres, mysql or volume',
  },
  {
    name: 'policy: post-restore script without a role',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      delete spec(m).restore.postRestoreScripts[0].runAs;
    },
    field: 'spec.restore.postRestoreScripts[0]',
    says: 'set either runAs.connectionSecret (a role without superuser) or runAsRestoreUser: true',
  },
  {
    name: 'policy: post-restore script with a role and the restore user',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).restore.postRestoreScripts[0].runAsRestoreUser = true;
    },
    field: 'spec.restore.postRestoreScripts[0]',
    says: 'set either runAs.connectionSecret',
  },
  {
    name: 'restore: SQL in the request',
    example: 'restorerequest-qa-copy.yaml',
    mutate: (m) => {
      spec(m).postRestoreSQL = 'select 1';
    },
    field: 'spec.postRestoreSQL',
    says: 'unknown field',
  },
  {
    name: 'policy: unknown field',
    example: 'backuppolicy-tenants.yaml',
    mutate: (m) => {
      spec(m).retension = { keepLastFull: 3 };
    },
    field: 'spec.retension',
    says: 'unknown field',
  },
  {
    name: 'backup: unknown type',
    example: 'backup-on-demand.yaml',
    mutate: (m) => {
      spec(m).type = 'differential';
    },
    field: 'spec.type',
    says: 'Unsupported value: "differential"',
  },
  {
    name: 'backup: no source',
    example: 'backup-on-demand.yaml',
    mutate: (m) => {
      delete spec(m).source;
    },
    field: 'spec.source',
    says: 'Required value',
  },
  {
    name: 'restore: backup named two ways',
    example: 'restorerequest-by-name.yaml',
    mutate: (m) => {
      spec(m).from.policy = 'tenants';
      spec(m).from.source = 'acme-db';
    },
    field: 'spec.from',
    says: 'exactly one way to pick the backup',
  },
  {
    name: 'restore: policy without source',
    example: 'restorerequest-qa-copy.yaml',
    mutate: (m) => {
      delete spec(m).from.source;
    },
    field: 'spec.from.source',
    says: 'policy and source go together',
  },
  {
    name: 'restore: before with a backup name',
    example: 'restorerequest-by-name.yaml',
    mutate: (m) => {
      spec(m).from.before = '2026-11-20T09:00:00Z';
    },
    field: 'spec.from.before',
    says: 'before only applies with policy and source',
  },
  {
    name: 'restore: two targets',
    example: 'restorerequest-qa-copy.yaml',
    mutate: (m) => {
      spec(m).target.original = true;
    },
    field: 'spec.target',
    says: 'exactly one target',
  },
  {
    name: 'restore: original set to false',
    example: 'restorerequest-point-in-time.yaml',
    mutate: (m) => {
      spec(m).target.original = false;
    },
    field: 'spec.target.original',
    says: 'original may only be true',
  },
  {
    name: 'restore: unknown conflict mode',
    example: 'restorerequest-qa-copy.yaml',
    mutate: (m) => {
      spec(m).mode = 'merge';
    },
    field: 'spec.mode',
    says: 'Unsupported value: "merge"',
  },
  {
    name: 'restore: from a repository with both a snapshot and a source identity',
    example: 'restorerequest-disaster-recovery.yaml',
    mutate: (m) => {
      spec(m).from.snapshot = 'abcdef12';
    },
    field: 'spec.from.repository',
    says: 'with repository, name either snapshot or sourceName',
  },
  {
    name: 'restore: a snapshot id without a repository',
    example: 'restorerequest-by-name.yaml',
    mutate: (m) => {
      spec(m).from.snapshot = 'abcdef12';
    },
    field: 'spec.from.repository',
    says: 'snapshot and sourceName only apply with repository',
  },
  {
    name: 'restore: createMissingRoles for a volume',
    example: 'restorerequest-disaster-recovery.yaml',
    mutate: (m) => {
      spec(m).target.createMissingRoles = true;
    },
    field: 'spec.target.createMissingRoles',
    says: 'createMissingRoles needs a database target',
  },
  {
    name: 'restore: original target for a repository snapshot',
    example: 'restorerequest-disaster-recovery.yaml',
    mutate: (m) => {
      delete spec(m).target.volume;
      spec(m).target.original = true;
    },
    field: 'spec.target.original',
    says: 'has no policy source to call original',
  },
  {
    name: 'restore: requester approves own restore',
    example: 'restorerequest-qa-copy.yaml',
    mutate: (m) => {
      spec(m).approvals = [{ user: 'dev@acme.example' }];
    },
    field: 'spec.approvals',
    says: 'cannot approve their own restore',
  },
];

describe('invalid manifests are rejected at apply time with a message naming the field', () => {
  for (const c of invalidOnCreate) {
    test(c.name, async () => {
      const manifest = loadExample(c.example);
      manifest.metadata = { ...manifest.metadata, namespace: 'invalid' };
      c.mutate(manifest);
      const message = await rejection(cluster.kubectl(['apply', '-f', '-'], stringify(manifest)));
      assert.match(message, new RegExp(`${escapeRegExp(c.field)}[:\\s"]`), `message names ${c.field}: ${message}`);
      assert.ok(message.includes(c.says), `message says "${c.says}": ${message}`);
    });
  }
});

interface ImmutableCase {
  name: string;
  example: string;
  change: (m: Manifest) => void;
  field: string;
  says: string;
}

const invalidOnUpdate: ImmutableCase[] = [
  {
    name: 'backup: spec cannot change',
    example: 'backup-on-demand.yaml',
    change: (m) => {
      spec(m).type = 'incremental';
    },
    field: 'spec',
    says: 'spec is immutable',
  },
  {
    name: 'repository: bucket cannot change',
    example: 'backuprepository-s3.yaml',
    change: (m) => {
      spec(m).s3.bucket = 'another-bucket';
    },
    field: 'spec.s3.bucket',
    says: 's3.bucket is immutable',
  },
  {
    name: 'repository: provider cannot change',
    example: 'backuprepository-filesystem.yaml',
    change: (m) => {
      spec(m).provider = 's3';
      spec(m).s3 = { bucket: 'b1b' };
      delete spec(m).filesystem;
      spec(m).credentialsSecret = { name: 'c' };
    },
    field: 'spec.provider',
    says: 'provider is immutable',
  },
  {
    name: 'restore: target cannot change',
    example: 'restorerequest-qa-copy.yaml',
    change: (m) => {
      spec(m).target.postgres.database = 'acme_prod';
    },
    field: 'spec',
    says: 'only approvals may change',
  },
  {
    name: 'restore: requestedBy cannot change',
    example: 'restorerequest-qa-copy.yaml',
    change: (m) => {
      spec(m).requestedBy = 'someone-else';
    },
    field: 'spec.requestedBy',
    says: 'requestedBy is immutable',
  },
  {
    name: 'restore: approvals cannot be withdrawn',
    example: 'restorerequest-point-in-time.yaml',
    change: (m) => {
      spec(m).approvals = [];
    },
    field: 'spec.approvals',
    says: 'can be added, never removed',
  },
];

describe('immutable fields are protected on update', () => {
  for (const c of invalidOnUpdate) {
    test(c.name, async () => {
      const manifest = loadExample(c.example);
      manifest.metadata = { name: `${manifest.metadata?.name}-upd`, namespace: 'invalid' };
      if (c.name.startsWith('restore: approvals')) (manifest.spec as Spec).approvals = [{ user: 'lead@acme.example' }];
      await cluster.kubectl(['apply', '-f', '-'], stringify(manifest));
      c.change(manifest);
      const message = await rejection(cluster.kubectl(['apply', '-f', '-'], stringify(manifest)));
      assert.match(message, new RegExp(`${escapeRegExp(c.field)}[:\\s"]`), `message names ${c.field}: ${message}`);
      assert.ok(message.includes(c.says), `message says "${c.says}": ${message}`);
    });
  }

  test('restore: an approval can be added', async () => {
    const manifest = loadExample('restorerequest-qa-copy.yaml');
    manifest.metadata = { name: 'approval-added', namespace: 'invalid' };
    const created = (await objects.create(manifest)) as Manifest;
    (created.spec as Spec).approvals = [{ user: 'lead@acme.example' }];
    const updated = (await objects.replace(created)) as Manifest;
    assert.deepEqual((updated.spec as Spec).approvals, [{ user: 'lead@acme.example' }]);
  });
});

/** What `kubectl apply` printed when the API server refused, as a user would read it. */
async function rejection(apply: Promise<string>): Promise<string> {
  const error = await apply.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  assert.ok(error, 'expected the API server to reject the manifest');
  return error.message;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('kubectl get shows useful columns', () => {
  const patchStatus = (resource: string, name: string, status: unknown) =>
    cluster.kubectl([
      '-n',
      'tenants',
      'patch',
      resource,
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);

  before(async () => {
    const now = new Date().toISOString();
    const ready = (type: string, status: string) => ({
      type,
      status,
      reason: 'Test',
      message: '',
      lastTransitionTime: now,
    });
    await patchStatus('backuppolicy', 'tenants', {
      conditions: [ready('Ready', 'True'), ready('RPOMet', 'False'), ready('ReplicasHealthy', 'True')],
      lastSuccessTime: new Date(Date.now() - 72 * 60_000).toISOString(),
      nextRunTime: '2026-11-23T15:00:00Z',
    });
    await patchStatus('backup', 'acme-db-before-migration', {
      phase: 'Succeeded',
      size: '1.2 GiB',
      startTime: now,
    });
    await patchStatus('restorerequest', 'acme-qa-copy', {
      phase: 'PendingApproval',
      backupName: 'acme-db-before-migration',
      approvalSummary: '0/1',
    });
    await patchStatus('backuprepository', 'primary-eu', {
      conditions: [ready('Ready', 'True')],
      size: '12.4 GiB',
      lastCheckTime: now,
    });
  });

  test('all four kinds in one `kubectl get -A`', async () => {
    const out = await cluster.kubectl(['get', 'backuppolicies,backups,restorerequests,backuprepositories', '-A']);
    const line = (name: string) =>
      out.split('\n').find((l) => l.startsWith('tenants ') && l.includes(`${name} `)) ?? '';
    assert.match(out, /NAMESPACE\s+NAME\s+READY\s+RPO MET\s+RPO TARGET\s+LAST SUCCESS\s+REPLICAS\s+NEXT RUN\s+AGE/);
    assert.match(line('backuppolicy.tidemark.dev/tenants'), /True\s+False\s+1h\s+7[23]m\s+True\s+2026-11-23T15:00:00Z/);
    assert.match(out, /NAME\s+POLICY\s+SOURCE\s+TYPE\s+PHASE\s+SIZE\s+STARTED\s+AGE/);
    assert.match(
      line('backup.tidemark.dev/acme-db-before-migration'),
      /tenants\s+acme-db\s+full\s+Succeeded\s+1\.2 GiB/,
    );
    assert.match(out, /NAME\s+PHASE\s+BACKUP\s+MODE\s+APPROVALS\s+RTO\s+AGE/);
    assert.match(
      line('restorerequest.tidemark.dev/acme-qa-copy'),
      /PendingApproval\s+acme-db-before-migration\s+replace\s+0\/1/,
    );
    assert.match(out, /NAME\s+PROVIDER\s+REGION\s+READY\s+SIZE\s+LAST CHECK\s+AGE/);
    assert.match(line('backuprepository.tidemark.dev/primary-eu'), /s3\s+eu-central-1\s+True\s+12\.4 GiB/);
  });

  test('the short names and the tidemark category work', async () => {
    const out = await cluster.kubectl(['get', 'tidemark', '-n', 'tenants', '-o', 'name']);
    for (const kind of ['backuppolicy', 'backup', 'restorerequest', 'backuprepository'])
      assert.match(out, new RegExp(`^${kind}\\.tidemark\\.dev/`, 'm'));
    assert.match(
      await cluster.kubectl(['get', 'bpol', '-n', 'tenants', '-o', 'name']),
      /backuppolicy.tidemark.dev\/tenants/,
    );
  });
});
