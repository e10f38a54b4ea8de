import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { Backup, BackupPolicy, RestoreRequest } from '../../api/kinds.ts';
import type { ErrorCode } from '../../errors.ts';
import type { JobObserved } from '../jobs/agent-result.ts';
import { s3Repository } from '../testing/objects.ts';
import { countApprovals, decideRestore, expectedCounts, type RestoreObserved, resolveTarget } from './decide.ts';
import { RESTORE_LABEL, restoreJobName } from './job.ts';
import { approvalRule, DEFAULT_APPROVER_GROUP, resolveBackup, WAIT_FOR_MISSING_MS } from './resolve.ts';

const ns = 'tenants';
const NOW = new Date('2026-03-02T10:00:00Z');
const API = 'tidemark.dev/v1alpha1';

function backup(
  name: string,
  completionTime: string | undefined,
  phase: 'Succeeded' | 'Failed' | 'Running' = 'Succeeded',
  extra: Partial<NonNullable<Backup['status']>> = {},
  source = 'acme-db',
): Backup {
  return {
    apiVersion: API,
    kind: 'Backup',
    metadata: { name, namespace: ns, uid: `uid-${name}` },
    spec: { policy: 'tenants', source, type: 'full' },
    status: {
      phase,
      ...(completionTime ? { completionTime } : {}),
      snapshotId: `snap-${name}`,
      objects: [{ name: 'public.invoices', records: 5000 }],
      repositories: [
        { repository: 'primary-eu', role: 'primary', state: 'Succeeded', snapshotId: `snap-${name}` },
        { repository: 'replica-we', role: 'replica', state: 'Succeeded', snapshotId: `snap-${name}` },
      ],
      ...extra,
    },
  };
}

const BACKUPS = [
  backup('b-1', '2026-03-01T01:00:00Z'),
  backup('b-2', '2026-03-01T02:00:00Z'),
  backup('b-3', '2026-03-01T03:00:00Z', 'Failed'),
  backup('b-4', undefined, 'Running'),
  backup('docs-1', '2026-03-01T04:00:00Z', 'Succeeded', {}, 'documents'),
];

const TARGETS = [
  { original: true },
  { postgres: { connectionSecret: { name: 'pg-qa' }, databases: ['acme_qa*', 'billing*'] } },
  { mysql: { connectionSecret: { name: 'my-qa' }, databases: ['*'] } },
  { volume: { claimNames: ['*'] } },
];

function policy(spec: Partial<BackupPolicy['spec']> = {}): BackupPolicy {
  return {
    apiVersion: API,
    kind: 'BackupPolicy',
    metadata: { name: 'tenants', namespace: ns },
    spec: {
      sources: [
        { name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } },
        { name: 'all-db', postgres: { connectionSecret: { name: 'pg-main' }, allDatabases: true } },
        { name: 'documents', volume: { claimName: 'documents' } },
        { name: 'by-label', volume: { selector: { matchLabels: { app: 'docs' } } } },
      ],
      schedule: { full: { every: '1d' } },
      repository: 'primary-eu',
      replicas: [{ repository: 'replica-we', region: 'westeurope' }],
      objectives: { rto: '10m' },
      ...spec,
      // Where the tests restore to, unless a test says otherwise.
      restore: { targets: TARGETS, ...spec.restore },
    } as BackupPolicy['spec'],
  };
}

const APPROVAL = { required: 2, approverUsers: ['alice', 'carol'], approverGroups: [] as string[] };

function request(
  spec: Partial<RestoreRequest['spec']> = {},
  status?: RestoreRequest['status'],
  created = '2026-03-02T09:58:00Z',
): RestoreRequest {
  return {
    apiVersion: API,
    kind: 'RestoreRequest',
    metadata: { name: 'qa', namespace: ns, uid: 'uid-qa', generation: 1, creationTimestamp: created },
    spec: {
      from: { backupName: 'b-2' },
      target: { postgres: { connectionSecret: { name: 'pg-qa' }, database: 'acme_qa' } },
      mode: 'refuse',
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const repo = (name: string) => s3Repository(name, ns);

function observed(req: RestoreRequest, over: Partial<RestoreObserved> = {}): RestoreObserved {
  return {
    request: req,
    backups: BACKUPS,
    policies: new Map([['tenants', policy()]]),
    repositories: new Map([
      ['primary-eu', repo('primary-eu')],
      ['replica-we', repo('replica-we')],
    ]),
    jobs: new Map(),
    settings: { image: 'tidemark:test', serviceAccountName: 'tidemark-agent' },
    now: NOW,
    ...over,
  };
}

function endedJob(name: string, outcome: 'Complete' | 'Failed', result?: AgentResult, completionTime?: string) {
  const job: k8s.V1Job = {
    metadata: { name, namespace: ns, labels: { [RESTORE_LABEL]: 'qa' } },
    status: {
      conditions: [{ type: outcome, status: 'True' }],
      ...(completionTime ? { completionTime: new Date(completionTime) } : {}),
    },
  };
  const entry: JobObserved = { job, ...(result ? { result } : {}) };
  return new Map([[name, entry]]);
}

const env = (job: k8s.V1Job | undefined) =>
  Object.fromEntries((job?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('resolveBackup', () => {
  const longAgo = new Date(NOW.getTime() - WAIT_FOR_MISSING_MS);
  const justNow = new Date(NOW.getTime() - 60_000);
  const cases: { name: string; from: RestoreRequest['spec']['from']; created?: Date; want: string }[] = [
    { name: 'by name', from: { backupName: 'b-1' }, want: 'b-1' },
    { name: 'by name, missing for the whole wait', from: { backupName: 'nope' }, want: 'BackupNotFound' },
    { name: 'by name, missing, just asked', from: { backupName: 'nope' }, created: justNow, want: 'WaitingForBackup' },
    { name: 'by name, failed', from: { backupName: 'b-3' }, want: 'BackupNotRestorable' },
    { name: 'by name, still running (however long)', from: { backupName: 'b-4' }, want: 'WaitingForBackup' },
    { name: 'latest skips failed and running', from: { policy: 'tenants', source: 'acme-db' }, want: 'b-2' },
    {
      name: 'latest before T',
      from: { policy: 'tenants', source: 'acme-db', before: '2026-03-01T01:30:00Z' },
      want: 'b-1',
    },
    {
      name: 'before is exclusive',
      from: { policy: 'tenants', source: 'acme-db', before: '2026-03-01T02:00:00Z' },
      want: 'b-1',
    },
    {
      name: 'nothing before a past T: the running run cannot qualify',
      from: { policy: 'tenants', source: 'acme-db', before: '2026-03-01T00:00:00Z' },
      want: 'BackupNotFound',
    },
    { name: 'other source', from: { policy: 'tenants', source: 'documents' }, want: 'docs-1' },
    { name: 'unknown source, for the whole wait', from: { policy: 'tenants', source: 'nope' }, want: 'BackupNotFound' },
    {
      name: 'unknown source, just asked (policy applied later)',
      from: { policy: 'tenants', source: 'nope' },
      created: justNow,
      want: 'WaitingForBackup',
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const got = resolveBackup(c.from, BACKUPS, c.created ?? longAgo, NOW);
      const outcome = 'backup' in got ? got.backup.metadata.name : 'wait' in got ? got.wait.reason : got.failure.reason;
      assert.equal(outcome, c.want);
    });

  test('latest with no success yet waits for the run in progress, without a bound', () => {
    const running = [backup('first', undefined, 'Running')];
    const got = resolveBackup({ policy: 'tenants', source: 'acme-db' }, running, new Date(0), NOW);
    assert.ok('wait' in got);
    assert.equal(got.wait.deadline, undefined);
    assert.match(got.wait.message, /waiting for Backup first \(phase Running\)/);
  });

  test('a missing Backup is waited for until the bound, then fails naming it', () => {
    const created = new Date(NOW.getTime() - 60_000);
    const got = resolveBackup({ backupName: 'later' }, [], created, NOW);
    assert.ok('wait' in got);
    assert.equal(got.wait.deadline?.getTime(), created.getTime() + WAIT_FOR_MISSING_MS);
    const after = resolveBackup(
      { backupName: 'later' },
      [],
      created,
      new Date(created.getTime() + WAIT_FOR_MISSING_MS),
    );
    assert.ok('failure' in after);
    assert.match(after.failure.message, /Backup later does not exist \(waited 10m\)/);
  });
});

describe('approvalRule', () => {
  const policies = (...list: BackupPolicy[]) => new Map(list.map((p) => [p.metadata.name ?? '', p]));
  const named = (name: string, spec: Partial<BackupPolicy['spec']>) => {
    const p = policy(spec);
    p.metadata.name = name;
    return p;
  };
  test("the Backup's own policy decides", () => {
    const own = policy({ restore: { approval: APPROVAL } });
    assert.deepEqual(approvalRule({ policy: own, namespace: ns, repository: 'x', policies: new Map() }).rule, APPROVAL);
  });
  test('the policy named by the source identity, when it exists in this namespace', () => {
    const got = approvalRule({
      namespace: ns,
      repository: 'primary-eu',
      sourceName: `${ns}/tenants/acme-db`,
      policies: policies(policy({ restore: { approval: APPROVAL } }), named('other', { repository: 'primary-eu' })),
    });
    assert.equal(got.policy?.metadata.name, 'tenants');
  });
  test('else the strictest policy using the repository (as primary or replica)', () => {
    const strict = named('strict', {
      repository: 'elsewhere',
      replicas: [{ repository: 'primary-eu', region: 'westeurope' }],
      restore: { approval: { required: 3, approverGroups: ['sre'] } },
    });
    const got = approvalRule({
      namespace: ns,
      repository: 'primary-eu',
      sourceName: 'old-namespace/gone/acme-db',
      policies: policies(policy({ restore: { approval: APPROVAL } }), strict, named('unrelated', { repository: 'x' })),
    });
    assert.equal(got.policy?.metadata.name, 'strict');
  });
  test('no policy at all: one approval from the documented group', () => {
    const got = approvalRule({ namespace: ns, repository: 'primary-eu', policies: new Map() });
    assert.deepEqual(got.rule, { required: 1, approverGroups: [DEFAULT_APPROVER_GROUP] });
    assert.equal(got.policy, undefined);
  });
});

describe('countApprovals', () => {
  const cases: {
    name: string;
    approvals: { user: string; groups?: string[] }[];
    rule: { approverUsers?: string[]; approverGroups?: string[] };
    requestedBy?: string;
    want: string[];
  }[] = [
    {
      name: 'listed users count',
      approvals: [{ user: 'alice' }, { user: 'carol' }],
      rule: APPROVAL,
      requestedBy: 'bob',
      want: ['alice', 'carol'],
    },
    {
      name: 'requester excluded',
      approvals: [{ user: 'alice' }, { user: 'bob' }],
      rule: { approverUsers: ['alice', 'bob'] },
      requestedBy: 'bob',
      want: ['alice'],
    },
    {
      name: 'requester excluded even as a member of an approver group',
      approvals: [{ user: 'bob', groups: ['dba'] }],
      rule: { approverGroups: ['dba'] },
      requestedBy: 'bob',
      want: [],
    },
    {
      name: 'duplicates count once',
      approvals: [{ user: 'alice' }, { user: 'alice' }],
      rule: APPROVAL,
      requestedBy: 'bob',
      want: ['alice'],
    },
    {
      name: 'unlisted user ignored without groups',
      approvals: [{ user: 'mallory' }],
      rule: APPROVAL,
      requestedBy: 'bob',
      want: [],
    },
    {
      name: 'an approval recording an approver group counts',
      approvals: [{ user: 'dave', groups: ['developers', 'dba'] }],
      rule: { approverGroups: ['dba'] },
      requestedBy: 'bob',
      want: ['dave'],
    },
    {
      name: 'an approval recording no approver group never counts when the rule names groups',
      approvals: [{ user: 'mallory', groups: ['developers'] }, { user: 'eve' }],
      rule: { approverGroups: ['dba'] },
      requestedBy: 'bob',
      want: [],
    },
    {
      name: 'groups count only against approverGroups, never as a user name',
      approvals: [{ user: 'mallory', groups: ['alice'] }],
      rule: APPROVAL,
      requestedBy: 'bob',
      want: [],
    },
    { name: 'no approvals', approvals: [], rule: APPROVAL, requestedBy: 'bob', want: [] },
  ];
  for (const c of cases)
    test(c.name, () => {
      assert.deepEqual(countApprovals(c.approvals, c.rule, c.requestedBy), c.want);
    });
});

describe('resolveTarget', () => {
  const cases: {
    name: string;
    target: RestoreRequest['spec']['target'];
    backup?: string;
    want: unknown;
  }[] = [
    {
      name: 'postgres target',
      target: { postgres: { connectionSecret: { name: 'pg-qa' }, database: 'acme_qa' } },
      want: { kind: 'database', engine: 'postgres', connectionSecret: 'pg-qa', database: 'acme_qa' },
    },
    {
      name: 'original database',
      target: { original: true },
      want: { kind: 'database', engine: 'postgres', connectionSecret: 'pg-main', database: 'acme' },
    },
    {
      name: 'original volume',
      target: { original: true },
      backup: 'docs-1',
      want: { kind: 'volume', claimName: 'documents' },
    },
    {
      name: 'volume target',
      target: { volume: { claimName: 'docs-qa' } },
      backup: 'docs-1',
      want: { kind: 'volume', claimName: 'docs-qa' },
    },
    {
      name: 'volume target in this namespace, explicitly',
      target: { volume: { claimName: 'docs-qa', namespace: ns } },
      backup: 'docs-1',
      want: { kind: 'volume', claimName: 'docs-qa' },
    },
    {
      name: 'cross-namespace volume',
      target: { volume: { claimName: 'docs-qa', namespace: 'other' } },
      backup: 'docs-1',
      want: 'cross-namespace volume restores are not supported yet',
    },
    { name: 'database backup into a volume', target: { volume: { claimName: 'x' } }, want: 'InvalidTarget' },
    {
      name: 'postgres backup into mysql',
      target: { mysql: { connectionSecret: { name: 'my' }, database: 'x' } },
      want: 'InvalidTarget',
    },
    {
      name: 'database not in the source',
      target: { postgres: { connectionSecret: { name: 'pg-qa' }, database: 'x' }, database: 'billing' },
      want: 'InvalidTarget',
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const b = BACKUPS.find((x) => x.metadata.name === (c.backup ?? 'b-2')) as Backup;
      const got = resolveTarget(request({ target: c.target }), b, policy());
      const summary = 'target' in got ? got.target : got.reason === 'Unsupported' ? got.message : got.reason;
      assert.deepEqual(summary, c.want);
    });

  test('a multi-database source needs target.database', () => {
    const b = backup('all-1', '2026-03-01T01:00:00Z', 'Succeeded', {}, 'all-db');
    const without = resolveTarget(request({ target: { original: true } }), b, policy());
    assert.ok('reason' in without && /spec.target.database/.test(without.message));
    const with_ = resolveTarget(request({ target: { original: true, database: 'billing' } }), b, policy());
    assert.deepEqual('target' in with_ && with_.target, {
      kind: 'database',
      engine: 'postgres',
      connectionSecret: 'pg-main',
      database: 'billing',
    });
  });

  test('a selector volume source cannot be restored in place yet', () => {
    const b = backup('lbl-1', '2026-03-01T01:00:00Z', 'Succeeded', {}, 'by-label');
    const got = resolveTarget(request({ target: { original: true } }), b, policy());
    assert.ok('reason' in got && got.reason === 'InvalidTarget');
  });
});

test('expectedCounts picks one database of a multi-database backup, without its prefix', () => {
  const b = backup(
    'all-1',
    '2026-03-01T01:00:00Z',
    'Succeeded',
    {
      objects: [
        { name: 'acme.public.invoices', records: 10 },
        { name: 'billing.public.bills', records: 3 },
      ],
    },
    'all-db',
  );
  assert.deepEqual(expectedCounts(b, policy(), 'billing'), [{ name: 'public.bills', records: 3 }]);
  assert.equal(expectedCounts(b, policy(), undefined).length, 2);
  // A single-database backup names its objects without the database.
  assert.deepEqual(expectedCounts(BACKUPS[1] as Backup, policy(), 'acme'), [
    { name: 'public.invoices', records: 5000 },
  ]);
});

describe('decideRestore: phases', () => {
  test('without an approval rule it starts at once from the primary', () => {
    const d = decideRestore(
      observed(request({ postRestoreScript: 'zero' }), {
        policies: new Map([
          [
            'tenants',
            policy({
              restore: {
                postRestoreScripts: [
                  {
                    name: 'zero',
                    sql: 'update invoices set total = 0',
                    runAs: { connectionSecret: { name: 'pg-anon' } },
                  },
                ],
              },
            }),
          ],
        ]),
      }),
    );
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.backupName, 'b-2');
    assert.equal(d.status?.repository, 'primary-eu');
    assert.equal(d.status?.jobName, restoreJobName(request()));
    assert.equal(d.status?.startTime, NOW.toISOString());
    assert.deepEqual(d.status?.expected, [{ name: 'public.invoices', records: 5000 }]);
    assert.equal(d.createJobs.length, 1);
    const job = d.createJobs[0];
    const e = env(job);
    assert.equal(e.TIDEMARK_SNAPSHOT, 'snap-b-2');
    assert.equal(e.TIDEMARK_RESTORE_MODE, 'new');
    assert.equal(e.TIDEMARK_POST_RESTORE_SQL, 'update invoices set total = 0');
    assert.deepEqual(e.TIDEMARK_SCRIPT_USER, { secretKeyRef: { name: 'pg-anon', key: 'username' } });
    assert.deepEqual(e.TIDEMARK_SCRIPT_PASSWORD, { secretKeyRef: { name: 'pg-anon', key: 'password' } });
    assert.equal(e.TIDEMARK_TARGET, 'postgresql://$(TIDEMARK_DB_USER)@$(TIDEMARK_DB_HOST):$(TIDEMARK_DB_PORT)/acme_qa');
    assert.deepEqual(e.PGPASSWORD, { secretKeyRef: { name: 'pg-qa', key: 'password', optional: true } });
    assert.match(String(e.TIDEMARK_REPO), /^s3:\/\/primary-eu\//);
    assert.deepEqual(job?.spec?.template.spec?.containers[0]?.args, ['agent', 'restore']);
    assert.ok(!JSON.stringify(job?.spec?.template.spec?.containers[0]?.args).includes('update'), 'SQL not in argv');
    assert.equal(job?.metadata?.ownerReferences?.[0]?.kind, 'RestoreRequest');
    assert.equal(job?.metadata?.labels?.[RESTORE_LABEL], 'qa');
    assert.equal(job?.metadata?.labels?.['tidemark.dev/backup'], undefined, 'not one of the Backup controller’s Jobs');
    assert.equal(job?.spec?.backoffLimit, 0);
    assert.equal(e.TIDEMARK_SNAPSHOT_SCOPE, undefined, 'the Backup names its snapshot');
    assert.deepEqual(
      d.events.map((x) => x.reason),
      ['RestoreStarted'],
    );
  });

  test('a restore Job the API server refused fails the request at once with its message (not JobLost)', () => {
    const started = decideRestore(observed(request()));
    const name = started.status?.jobName ?? '';
    const again = decideRestore(
      observed(
        { ...request(), status: started.status as NonNullable<RestoreRequest['status']> },
        { rejected: new Map([[name, 'the API server refused it (403): exceeded quota']]) },
      ),
    );
    assert.equal(again.status?.phase, 'Failed');
    assert.equal(again.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'JobRejected');
    assert.match(again.status?.error ?? '', /exceeded quota/);
  });

  test("a Backup the primary's retention forgot restores from the replica that keeps it", () => {
    const forgotten = backup('b-2', '2026-03-01T02:00:00Z', 'Succeeded', {
      repositories: [
        { repository: 'primary-eu', role: 'primary', state: 'Forgotten', snapshotId: 'snap-b-2' },
        { repository: 'replica-we', role: 'replica', state: 'Succeeded', snapshotId: 'snap-b-2' },
      ],
    });
    const d = decideRestore(observed(request(), { backups: [forgotten] }));
    assert.equal(d.status?.repository, 'replica-we');
    assert.match(String(env(d.createJobs[0]).TIDEMARK_REPO), /^s3:\/\/replica-we\//);
  });

  test('mode replace, target.database and a volume target reach the Job', () => {
    const d = decideRestore(
      observed(
        request({
          from: { backupName: 'docs-1' },
          target: { volume: { claimName: 'docs-qa' } },
          mode: 'replace',
        }),
        { claims: new Set(['docs-qa']) },
      ),
    );
    const e = env(d.createJobs[0]);
    assert.equal(e.TIDEMARK_RESTORE_MODE, 'replace');
    assert.equal(e.TIDEMARK_TARGET, 'file:///data');
    const pod = d.createJobs[0]?.spec?.template.spec;
    assert.deepEqual(
      pod?.volumes?.find((v) => v.name === 'target'),
      { name: 'target', persistentVolumeClaim: { claimName: 'docs-qa' } },
    );
    const multi = decideRestore(
      observed(request({ from: { backupName: 'b-2' }, target: { original: true, database: 'acme' } })),
    );
    assert.equal(env(multi.createJobs[0]).TIDEMARK_DATABASE, 'acme');
    assert.equal(env(multi.createJobs[0]).TIDEMARK_CREATE_MISSING_ROLES, undefined);
    const roles = decideRestore(
      observed(request({ from: { backupName: 'b-2' }, target: { original: true, createMissingRoles: true } })),
    );
    assert.equal(env(roles.createJobs[0]).TIDEMARK_CREATE_MISSING_ROLES, 'true');
  });

  test('a missing target PVC fails before anyone approves', () => {
    const d = decideRestore(
      observed(request({ from: { backupName: 'docs-1' }, target: { volume: { claimName: 'nope' } } }), {
        claims: new Set(['docs-qa']),
      }),
    );
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.status?.error ?? '', /PersistentVolumeClaim nope does not exist/);
  });

  const failures: { name: string; req: RestoreRequest; over?: Partial<RestoreObserved>; error: RegExp }[] = [
    {
      name: 'unknown backup, after the wait',
      req: request({ from: { backupName: 'nope' } }, undefined, '2026-03-02T09:40:00Z'),
      error: /Backup nope does not exist \(waited 10m\)/,
    },
    {
      name: 'no backup of the source, after the wait',
      req: request({ from: { policy: 'tenants', source: 'nope' } }, undefined, '2026-03-02T09:40:00Z'),
      error: /no Succeeded Backup of policy tenants source nope/,
    },
    {
      name: 'the named Backup failed',
      req: request({ from: { backupName: 'b-3' } }),
      error: /Backup b-3 failed/,
    },
    {
      name: 'policy gone and no requester: the default approval rule cannot be applied',
      req: request({ from: { backupName: 'docs-1' }, target: { volume: { claimName: 'docs-copy' } } }),
      over: { policies: new Map() },
      error:
        /no BackupPolicy in tenants uses repository primary-eu, so the default rule requires approval, but spec.requestedBy is empty/,
    },
    {
      name: 'cross-namespace volume',
      req: request({ from: { backupName: 'docs-1' }, target: { volume: { claimName: 'x', namespace: 'qa' } } }),
      error: /cross-namespace volume restores are not supported yet/,
    },
    {
      name: 'primary repository gone',
      req: request(),
      over: { repositories: new Map() },
      error: /BackupRepository primary-eu of Backup b-2 does not exist/,
    },
    {
      name: 'resolved backup deleted before the start',
      req: request({}, { backupName: 'gone', phase: 'PendingApproval' }),
      error: /Backup gone was deleted/,
    },
    {
      name: 'approval required but the requester is unknown',
      req: request(),
      over: { policies: new Map([['tenants', policy({ restore: { approval: APPROVAL } })]]) },
      error: /spec.requestedBy is empty/,
    },
  ];
  for (const f of failures)
    test(`fails: ${f.name}`, () => {
      const d = decideRestore(observed(f.req, f.over));
      assert.equal(d.status?.phase, 'Failed');
      assert.match(d.status?.error ?? '', f.error);
      assert.equal(d.createJobs.length, 0);
      assert.equal(d.status?.conditions?.find((c) => c.type === 'Succeeded')?.status, 'False');
      assert.deepEqual(
        d.events.map((e) => e.reason),
        ['RestoreFailed'],
      );
    });

  test('a finished request is left alone', () => {
    for (const phase of ['Succeeded', 'Failed'] as const) {
      const req = request({}, { phase, backupName: 'b-2' });
      const d = decideRestore(observed(req));
      assert.deepEqual(d.status, req.status);
      assert.equal(d.createJobs.length + d.events.length, 0);
    }
  });
});

describe('decideRestore: waiting for what it restores', () => {
  test('a Backup still running: Pending with Resolved False naming it, one event, no Job; then it proceeds', () => {
    const req = request({ from: { backupName: 'b-4' } });
    const d = decideRestore(observed(req));
    assert.equal(d.status?.phase, 'Pending');
    const resolved = d.status?.conditions?.find((c) => c.type === 'Resolved');
    assert.equal(resolved?.status, 'False');
    assert.equal(resolved?.reason, 'WaitingForBackup');
    assert.match(resolved?.message ?? '', /Backup b-4 \(phase Running\)/);
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['RestoreWaiting'],
    );
    assert.equal(d.createJobs.length, 0);
    assert.equal(d.status?.backupName, 'b-4', 'pinned: the request waits for this Backup');

    const again = decideRestore(observed({ ...req, status: d.status }));
    assert.deepEqual(again.events, [], 'the wait is announced once');
    assert.equal(again.status?.phase, 'Pending');

    const deleted = decideRestore(
      observed({ ...req, status: d.status }, { backups: BACKUPS.filter((b) => b.metadata.name !== 'b-4') }),
    );
    assert.equal(deleted.status?.phase, 'Failed', 'deleted while waited for: fails at once');
    assert.match(deleted.status?.error ?? '', /Backup b-4 was deleted before the restore started/);
    const failed = BACKUPS.map((b) => (b.metadata.name === 'b-4' ? backup('b-4', undefined, 'Failed') : b));
    const ended = decideRestore(observed({ ...req, status: d.status }, { backups: failed }));
    assert.equal(ended.status?.phase, 'Failed');
    assert.match(ended.status?.error ?? '', /Backup b-4 failed/);

    const succeeded = BACKUPS.map((b) =>
      b.metadata.name === 'b-4' ? backup('b-4', '2026-03-02T09:59:00Z', 'Succeeded') : b,
    );
    const go = decideRestore(observed({ ...req, status: d.status }, { backups: succeeded }));
    assert.equal(go.status?.phase, 'Running');
    assert.equal(go.status?.backupName, 'b-4');
    assert.equal(go.status?.conditions?.find((c) => c.type === 'Resolved')?.status, 'True');
    assert.equal(go.createJobs.length, 1);
  });

  test('a Backup that does not exist yet: waits, with a requeue at the end of the bound', () => {
    const d = decideRestore(observed(request({ from: { backupName: 'later' } })));
    assert.equal(d.status?.phase, 'Pending');
    // created 09:58, bound 10m, now 10:00: 8 minutes (and a second) left
    assert.equal(d.requeueAfterMs, 8 * 60_000 + 1000);
  });

  test('a BackupRepository that does not exist yet (a cluster being rebuilt): waits', () => {
    const d = decideRestore(
      observed(request({ from: { repository: 'rebuilt', snapshot: 'abcdef12' }, requestedBy: 'dev' })),
    );
    assert.equal(d.status?.phase, 'Pending');
    assert.equal(d.status?.conditions?.find((c) => c.type === 'Resolved')?.reason, 'WaitingForRepository');
  });
});

describe('decideRestore: straight from a repository', () => {
  const volumeTarget = { volume: { claimName: 'docs-qa' } };

  test('a snapshot id with no policy in the namespace: one approval from the default group, then a Job naming the snapshot', () => {
    const req = request({
      from: { repository: 'primary-eu', snapshot: 'abcdef12' },
      target: volumeTarget,
      requestedBy: 'dev',
    });
    const pending = decideRestore(observed(req, { policies: new Map(), backups: [] }));
    assert.equal(pending.status?.phase, 'PendingApproval');
    assert.deepEqual(pending.status?.approverGroups, [DEFAULT_APPROVER_GROUP]);
    assert.equal(pending.status?.approvalsRequired, 1);
    assert.equal(pending.createJobs.length, 0);

    const approved = {
      ...req,
      spec: { ...req.spec, approvals: [{ user: 'oncall', groups: [DEFAULT_APPROVER_GROUP] }] },
      status: pending.status,
    };
    const d = decideRestore(observed(approved, { policies: new Map(), backups: [] }));
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.repository, 'primary-eu');
    assert.equal(d.status?.backupName, undefined);
    const vars = env(d.createJobs[0]);
    assert.equal(vars.TIDEMARK_SNAPSHOT, 'abcdef12');
    assert.equal(vars.TIDEMARK_SNAPSHOT_SOURCE, undefined);
    assert.equal(vars.TIDEMARK_SNAPSHOT_SCOPE, `${ns}/`, 'the agent refuses another namespace snapshot');
    assert.equal(vars.TIDEMARK_TARGET, 'file:///data');
    const labels = d.createJobs[0]?.metadata?.labels ?? {};
    assert.equal(labels[RESTORE_LABEL], 'qa');
    assert.equal(labels['tidemark.dev/policy'], undefined);
  });

  test('a source identity + before: the agent resolves it; the policy that identity names sets the rule', () => {
    const req = request({
      from: { repository: 'primary-eu', sourceName: `${ns}/tenants/documents`, before: '2026-03-01T12:00:00Z' },
      target: volumeTarget,
    });
    const d = decideRestore(observed(req, { backups: [] }));
    assert.equal(d.status?.phase, 'Running', 'the tenants policy has no approval rule');
    const vars = env(d.createJobs[0]);
    assert.equal(vars.TIDEMARK_SNAPSHOT_SOURCE, `${ns}/tenants/documents`);
    assert.equal(vars.TIDEMARK_SNAPSHOT_BEFORE, '2026-03-01T12:00:00Z');
    assert.equal(vars.TIDEMARK_SNAPSHOT, undefined);
    assert.match(
      d.status?.conditions?.find((c) => c.type === 'Resolved')?.message ?? '',
      /latest snapshot of tenants\/tenants\/documents taken before 2026-03-01T12:00:00Z in repository primary-eu/,
    );
  });

  test('success records the snapshot the agent resolved', () => {
    const req = request(
      { from: { repository: 'primary-eu', sourceName: `${ns}/tenants/documents` }, target: volumeTarget },
      { phase: 'Running', jobName: restoreJobName(request()), repository: 'primary-eu' },
    );
    const jobs = endedJob(restoreJobName(req), 'Complete', {
      ok: true,
      snapshotId: 'f'.repeat(64),
      snapshotSource: `${ns}/tenants/documents`,
      snapshotTime: '2026-03-01T04:00:00.000Z',
      objects: [{ name: '.', records: 3 }],
    });
    const d = decideRestore(observed(req, { jobs, backups: [] }));
    assert.equal(d.status?.phase, 'Succeeded');
    assert.equal(d.status?.snapshotId, 'f'.repeat(64));
    assert.equal(d.status?.snapshotSource, `${ns}/tenants/documents`);
    assert.equal(d.status?.snapshotTime, '2026-03-01T04:00:00.000Z');
  });

  test("another namespace's source identity fails at once: a namespace restores only its own snapshots", () => {
    const d = decideRestore(
      observed(request({ from: { repository: 'primary-eu', sourceName: 'payments/db/ledger' }, target: volumeTarget })),
    );
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.status?.error ?? '', /sourceName payments\/db\/ledger is not of namespace tenants/);
    assert.equal(d.createJobs.length, 0);
  });

  test('original is refused: there is no policy source to call original', () => {
    const d = decideRestore(
      observed(request({ from: { repository: 'primary-eu', snapshot: 'abcdef12' }, target: { original: true } })),
    );
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.status?.error ?? '', /no original target/);
  });
});

describe('decideRestore: approval', () => {
  const withRule = { policies: new Map([['tenants', policy({ restore: { approval: APPROVAL } })]]) };

  test('waits in PendingApproval with the rule copied into status, counting only valid approvals', () => {
    const req = request({ requestedBy: 'bob', approvals: [{ user: 'alice' }, { user: 'mallory' }] });
    const d = decideRestore(observed(req, withRule));
    assert.equal(d.status?.phase, 'PendingApproval');
    assert.equal(d.status?.approvalSummary, '1/2');
    assert.equal(d.status?.approvalsRequired, 2);
    assert.deepEqual(d.status?.approverUsers, ['alice', 'carol']);
    assert.deepEqual(d.status?.approverGroups, []);
    assert.deepEqual(d.status?.approvedBy, ['alice']);
    assert.equal(d.status?.backupName, 'b-2');
    assert.equal(d.createJobs.length, 0);
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['RestorePendingApproval'],
    );
    // Reconciling again in the same state says nothing new.
    const again = decideRestore(observed({ ...req, status: d.status }, withRule));
    assert.equal(again.events.length, 0);
    assert.deepEqual(again.status, d.status);
  });

  test("a forged status (approver lists widened before the operator wrote them) counts nothing: the rule is the policy's", () => {
    const groupRule = {
      policies: new Map([['tenants', policy({ restore: { approval: { required: 1, approverGroups: ['dba'] } } })]]),
    };
    const forged = { phase: 'PendingApproval' as const, approverGroups: ['developers'], approverUsers: ['mallory'] };
    const req = request({ requestedBy: 'bob', approvals: [{ user: 'mallory', groups: ['developers'] }] }, forged);
    const d = decideRestore(observed(req, groupRule));
    assert.equal(d.status?.phase, 'PendingApproval');
    assert.equal(d.status?.approvalSummary, '0/1');
    assert.deepEqual(d.status?.approvedBy, []);
    assert.deepEqual(d.status?.approverGroups, ['dba'], "the operator writes the policy's rule back");
    assert.deepEqual(d.status?.approverUsers, []);
    assert.equal(d.createJobs.length, 0);
  });

  test('once enough distinct approvers approved: Approved, then running', () => {
    const pending = decideRestore(observed(request({ requestedBy: 'bob' }), withRule)).status;
    const req = request(
      { requestedBy: 'bob', approvals: [{ user: 'alice' }, { user: 'alice' }, { user: 'carol' }] },
      pending,
    );
    const later = new Date(NOW.getTime() + 5 * 60_000);
    const d = decideRestore(observed(req, { ...withRule, now: later }));
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.approvalSummary, '2/2');
    const approved = d.status?.conditions?.find((c) => c.type === 'Approved');
    assert.equal(approved?.status, 'True');
    assert.equal(approved?.lastTransitionTime, later.toISOString());
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['RestoreApproved', 'RestoreStarted'],
    );
    assert.equal(d.createJobs.length, 1);
  });

  test('the resolved backup stays fixed while waiting, even when a newer one appears', () => {
    const req = request({ from: { policy: 'tenants', source: 'acme-db' }, requestedBy: 'bob' });
    const first = decideRestore(observed(req, withRule));
    assert.equal(first.status?.backupName, 'b-2');
    const newer = [...BACKUPS, backup('b-9', '2026-03-02T09:59:00Z')];
    const again = decideRestore(observed({ ...req, status: first.status }, { ...withRule, backups: newer }));
    assert.equal(again.status?.backupName, 'b-2');
  });
});

describe('decideRestore: what the policy allows', () => {
  const withRule = { policies: new Map([['tenants', policy({ restore: { approval: APPROVAL, targets: TARGETS } })]]) };

  test('a target outside the list fails before approval, with no Job, naming the rules', () => {
    const req = request({
      target: { postgres: { connectionSecret: { name: 'pg-qa' }, database: 'payroll' } },
      requestedBy: 'bob',
    });
    const d = decideRestore(observed(req, withRule));
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(d.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, 'TargetNotAllowed');
    assert.match(
      d.status?.error ?? '',
      /payroll \(Secret pg-qa\) is not allowed: policy tenants allows restores into: original: true; postgres pg-qa/,
    );
    assert.equal(d.status?.approvalsRequired, undefined, 'nobody is asked to approve');
    assert.equal(d.createJobs.length, 0);
  });

  test('a repository restore takes the targets of the policy the approval rule comes from', () => {
    const req = request({
      from: { repository: 'primary-eu', sourceName: `${ns}/tenants/acme-db` },
      target: { postgres: { connectionSecret: { name: 'pg-other' }, database: 'acme_qa' } },
      requestedBy: 'bob',
    });
    const d = decideRestore(observed(req, withRule));
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.status?.error ?? '', /Secret pg-other\) is not allowed: policy tenants/);
  });

  test('an unknown script fails before approval; a known one travels in the Job env', () => {
    const scripts = policy({
      restore: { postRestoreScripts: [{ name: 'vacuum', sql: 'vacuum', runAsRestoreUser: true }] },
    });
    const policies = new Map([['tenants', scripts]]);
    const unknown = decideRestore(observed(request({ postRestoreScript: 'nope' }), { policies }));
    assert.equal(unknown.status?.error, 'policy tenants has no post-restore script nope (it has: vacuum)');
    const started = decideRestore(observed(request({ postRestoreScript: 'vacuum' }), { policies }));
    const e = env(started.createJobs[0]);
    assert.equal(e.TIDEMARK_POST_RESTORE_SQL, 'vacuum');
    assert.equal(e.TIDEMARK_SCRIPT_USER, undefined, 'runAsRestoreUser: the target user');
  });
});

describe('decideRestore: running, success and fallback', () => {
  const running = (over: Partial<NonNullable<RestoreRequest['status']>> = {}) =>
    request(
      {},
      {
        phase: 'Running',
        backupName: 'b-2',
        repository: 'primary-eu',
        jobName: restoreJobName(request()),
        startTime: '2026-03-02T09:58:00Z',
        expected: [{ name: 'public.invoices', records: 5000 }],
        ...over,
      },
    );

  test('success records counts, times, the achieved RTO (from creation without approval) and RTOMet', () => {
    const jobs = endedJob(
      restoreJobName(request()),
      'Complete',
      { ok: true, objects: [{ name: 'public.invoices', records: 5000 }] },
      '2026-03-02T09:59:30Z',
    );
    const d = decideRestore(observed(running(), { jobs }));
    assert.equal(d.status?.phase, 'Succeeded');
    assert.equal(d.status?.completionTime, '2026-03-02T09:59:30.000Z');
    assert.equal(d.status?.rtoSeconds, 90);
    assert.equal(d.status?.achievedRTO, '1m30s');
    assert.deepEqual(d.status?.restored, [{ name: 'public.invoices', records: 5000 }]);
    assert.equal(d.status?.conditions?.find((c) => c.type === 'RTOMet')?.status, 'True');
    assert.equal(d.status?.conditions?.find((c) => c.type === 'Succeeded')?.status, 'True');
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ['RestoreSucceeded'],
    );
  });

  test("the agent's warnings (counts that differ from the backup's) are in the condition and a Warning event", () => {
    const warning = "restored row counts differ from the backup's: public.invoices: 4999 restored, 5000 in the backup";
    const jobs = endedJob(
      restoreJobName(request()),
      'Complete',
      { ok: true, objects: [{ name: 'public.invoices', records: 4999 }], warnings: [warning] },
      '2026-03-02T09:59:30Z',
    );
    const d = decideRestore(observed(running(), { jobs }));
    assert.equal(d.status?.phase, 'Succeeded');
    assert.match(
      d.status?.conditions?.find((c) => c.type === 'Succeeded')?.message ?? '',
      new RegExp(`; warnings: ${warning}$`),
    );
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason, e.message]),
      [
        ['Warning', 'RestoreWarnings', warning],
        ['Normal', 'RestoreSucceeded', d.events[1]?.message],
      ],
    );
  });

  test('with approval the RTO clock starts at approval', () => {
    const approvedAt = '2026-03-02T09:59:00Z';
    const req = running({
      approvalsRequired: 1,
      conditions: [
        { type: 'Approved', status: 'True', reason: 'Approved', message: '', lastTransitionTime: approvedAt },
      ],
    });
    const jobs = endedJob(restoreJobName(request()), 'Complete', { ok: true, objects: [] }, '2026-03-02T09:59:45Z');
    const d = decideRestore(observed(req, { jobs }));
    assert.equal(d.status?.rtoSeconds, 45);
  });

  test('an RTO over the objective sets RTOMet False', () => {
    const jobs = endedJob(restoreJobName(request()), 'Complete', { ok: true, objects: [] }, '2026-03-02T10:30:00Z');
    const d = decideRestore(observed(running(), { jobs }));
    assert.equal(d.status?.achievedRTO, '32m');
    assert.equal(d.status?.conditions?.find((c) => c.type === 'RTOMet')?.status, 'False');
  });

  test('still running past the objective: RTOMet False early; before it, a requeue at the deadline', () => {
    const jobs = new Map([[restoreJobName(request()), { job: { metadata: { name: restoreJobName(request()) } } }]]);
    const early = decideRestore(observed(running(), { jobs }));
    assert.equal(early.status?.phase, 'Running');
    assert.equal(
      early.status?.conditions?.find((c) => c.type === 'RTOMet'),
      undefined,
    );
    assert.equal(early.requeueAfterMs, 60_000);
    const nearDeadline = decideRestore(observed(running(), { jobs, now: new Date('2026-03-02T10:07:50Z') }));
    assert.equal(nearDeadline.requeueAfterMs, 11_000);
    const late = decideRestore(observed(running(), { jobs, now: new Date('2026-03-02T10:09:00Z') }));
    assert.equal(late.status?.conditions?.find((c) => c.type === 'RTOMet')?.status, 'False');
  });

  const fallbackCases: { code: ErrorCode; fallsBack: boolean }[] = [
    { code: 'Transient', fallsBack: true },
    { code: 'NotFound', fallsBack: true },
    { code: 'Corrupt', fallsBack: true },
    { code: 'AccessDenied', fallsBack: true },
    { code: 'ContainerMissing', fallsBack: true },
    { code: 'InvalidArgument', fallsBack: false },
    { code: 'SourceUnavailable', fallsBack: false },
    { code: 'WrongKey', fallsBack: false },
  ];
  for (const c of fallbackCases)
    test(`primary failed with ${c.code}: ${c.fallsBack ? 'falls back to the replica' : 'fails'}`, () => {
      const jobs = endedJob(restoreJobName(request()), 'Failed', {
        ok: false,
        error: { code: c.code, message: 'boom' },
      });
      const d = decideRestore(observed(running(), { jobs }));
      if (c.fallsBack) {
        assert.equal(d.status?.phase, 'Running');
        assert.equal(d.status?.repository, 'replica-we');
        assert.equal(d.status?.jobName, restoreJobName(request(), 'replica-we'));
        assert.equal(d.createJobs.length, 1);
        const e = env(d.createJobs[0]);
        assert.match(String(e.TIDEMARK_REPO), /^s3:\/\/replica-we\//);
        assert.equal(e.TIDEMARK_SNAPSHOT, 'snap-b-2');
        assert.deepEqual(
          d.events.map((x) => x.reason),
          ['RestoreFellBackToReplica'],
        );
      } else {
        assert.equal(d.status?.phase, 'Failed');
        assert.equal(d.createJobs.length, 0);
        assert.match(d.status?.error ?? '', /boom/);
      }
    });

  test('falls back only once', () => {
    const fallback = restoreJobName(request(), 'replica-we');
    const jobs = endedJob(fallback, 'Failed', { ok: false, error: { code: 'Transient', message: 'down too' } });
    const d = decideRestore(observed(running({ jobName: fallback, repository: 'replica-we' }), { jobs }));
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(d.createJobs.length, 0);
    assert.match(d.status?.error ?? '', /replica-we failed: down too/);
  });

  test('no fallback without a replica that holds the backup', () => {
    const noReplica = BACKUPS.map((b) =>
      b.metadata.name === 'b-2'
        ? backup('b-2', '2026-03-01T02:00:00Z', 'Succeeded', {
            repositories: [
              { repository: 'primary-eu', role: 'primary', state: 'Succeeded' },
              { repository: 'replica-we', role: 'replica', state: 'Failed' },
            ],
          })
        : b,
    );
    const jobs = endedJob(restoreJobName(request()), 'Failed', {
      ok: false,
      error: { code: 'Corrupt', message: 'bad pack' },
    });
    const d = decideRestore(observed(running(), { jobs, backups: noReplica }));
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.status?.error ?? '', /no replica holds Backup b-2/);
  });

  test('a Job without a result (killed, deadline) fails without fallback; a lost Job fails', () => {
    const jobs = endedJob(restoreJobName(request()), 'Failed');
    const d = decideRestore(observed(running(), { jobs }));
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(d.createJobs.length, 0);
    const lost = decideRestore(observed(running()));
    assert.equal(lost.status?.phase, 'Failed');
    assert.match(lost.status?.error ?? '', /disappeared/);
  });
});
