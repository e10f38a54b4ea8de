// R-RESTORE: restore approval enforced by the API server. deploy/admission-policy.yaml (a
// ValidatingAdmissionPolicy on request.userInfo) is applied to a real kube-apiserver, and users are
// impersonated with RBAC that lets them write RestoreRequests but not their status
// (test/harness/four-eyes.ts). The operator's part is in test/operator/restore-request.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import {
  type Approval,
  approveAs,
  installFourEyes,
  kubectlAs,
  type Person,
  admissionPolicyFile as policyFile,
} from '../harness/four-eyes.ts';
import { helm } from '../harness/helm.ts';
import { repoRoot } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field
type Obj = Record<string, any>;
const namespace = 'tenants';
const group = 'tidemark.dev';
const version = 'v1alpha1';
const plural = 'restorerequests';

/** The people of the scenario: a requester, a colleague, an on-call approver and a user named in approverUsers. */
const A = { user: 'dev@acme.example', groups: ['developers'] };
const B = { user: 'colleague@acme.example', groups: ['developers'] };
const C = { user: 'oncall@acme.example', groups: ['platform-oncall'] };
const D = { user: 'cto@acme.example', groups: [] as string[] };

const workDir = makeWorkDir('approval');
let cluster: Cluster;

before(async () => {
  cluster = await startCluster(workDir.path);
  await cluster.kubectl(['create', 'namespace', namespace]);
  await installFourEyes(cluster, namespace, [A, B, C, D]);
});

after(async () => {
  await cluster?.stop();
  workDir.remove();
});

describe('the policy', () => {
  test("matches the main resource only: status writes (only the operator's) never depend on it", () => {
    const [policy] = policyObjects(readFileSync(policyFile, 'utf8'));
    const rules = policy?.spec.matchConstraints.resourceRules as Obj[];
    assert.deepEqual(
      rules.flatMap((r) => r.resources),
      [plural],
    );
    assert.deepEqual(
      rules.flatMap((r) => r.operations),
      ['CREATE', 'UPDATE'],
    );
  });
});

describe('creating a RestoreRequest', () => {
  test('is allowed when requestedBy is the creating user', async () => {
    await create(A, restore('acme-before-incident', A.user));
  });

  test('is refused when requestedBy names someone else', async () => {
    await assertRefused(
      create(A, restore('in-someone-elses-name', C.user)),
      `${A.user} cannot create a restore requested by ${C.user}: spec.requestedBy must be the user creating the request`,
    );
  });

  test('is refused without requestedBy', async () => {
    const body = restore('anonymous', A.user);
    delete body.spec.requestedBy;
    await assertRefused(create(A, body), /spec.requestedBy must name who asks for the restore/);
  });

  test('is refused with approvals already in it', async () => {
    const body = restore('pre-approved', A.user);
    body.spec.approvals = [{ user: C.user }];
    await assertRefused(
      create(A, body),
      `${A.user} cannot create a restore with approvals: nobody approves at creation`,
    );
  });

  test('is checked for admins too: nobody is exempt by name', async () => {
    await assertRefused(
      cluster.kubectl(['create', '-f', '-'], JSON.stringify(restore('by-admin-for-dev', A.user))),
      /admin cannot create a restore requested by dev@acme.example/,
    );
  });
});

describe('approving a RestoreRequest', () => {
  const name = 'acme-before-incident';

  before(async () => {
    // As the operator does once it has read the policy's approval rule.
    await setStatus(name, { phase: 'PendingApproval', approverGroups: ['platform-oncall'], approverUsers: [D.user] });
  });

  test('the requester cannot approve their own restore', async () => {
    // The CRD's own rule answers first (schema validation runs before validating admission); the
    // policy says the same for defence in depth.
    await assertRefused(approve(A, name, [{ user: A.user }]), /the requester cannot approve their own restore/);
  });

  test('a user outside the approver groups cannot approve', async () => {
    await assertRefused(
      approve(B, name, [{ user: B.user }]),
      `${B.user} cannot approve: not among the approvers of this restore (users: [${D.user}]; groups: [platform-oncall])`,
    );
  });

  test('an approver cannot approve in the name of someone else', async () => {
    await assertRefused(
      approve(C, name, [{ user: D.user }]),
      `${C.user} cannot approve in the name of ${D.user}: each approver adds their own approval`,
    );
  });

  test('an approver cannot add several approvals in one update', async () => {
    await assertRefused(
      approve(C, name, [{ user: C.user }, { user: D.user }]),
      `${C.user} cannot add 2 approvals in one update`,
    );
  });

  test('an approval cannot record a group its user is not in', async () => {
    await assertRefused(
      approve(B, name, [{ user: B.user, groups: ['platform-oncall'] }]),
      `${B.user} cannot record groups they are not in`,
    );
  });

  test('a member of an approver group must record that group in the approval', async () => {
    await assertRefused(
      approve(C, name, [{ user: C.user, groups: [] }]),
      `${C.user} approves as a member of an approver group, so the approval must record that group: add groups: [platform-oncall]`,
    );
  });

  test('a member of an approver group can approve as themselves, recording their groups', async () => {
    await approve(C, name, [{ user: C.user, comment: 'incident INC-42' }]);
    assert.deepEqual((await read(name)).spec.approvals, [
      { user: C.user, groups: ['platform-oncall'], comment: 'incident INC-42' },
    ]);
  });

  test('a user named in approverUsers can approve as themselves, after another approval', async () => {
    await approve(D, name, [{ user: D.user }]);
    assert.deepEqual(
      (await read(name)).spec.approvals.map((a: Approval) => a.user),
      [C.user, D.user],
    );
  });

  test("nobody can rewrite an approval already given, not even the approver's comment or groups", async () => {
    const approvals = (await read(name)).spec.approvals as Approval[];
    for (const change of [{ comment: 'never mind' }, { groups: ['developers'] }]) {
      const rewritten = approvals.map((a) => (a.user === C.user ? { ...a, ...change } : a));
      await assertRefused(
        patch(B, name, { spec: { approvals: rewritten } }),
        `${B.user} cannot change an approval already given`,
      );
    }
  });

  test('updates that add no approval are not checked for approvers (e.g. labels, finalizers)', async () => {
    await patch(B, name, { metadata: { labels: { ticket: 'inc-42' } } });
    await cluster.kubectl([
      'patch',
      '-n',
      namespace,
      `${plural}.${group}`,
      name,
      '--type=merge',
      '-p',
      JSON.stringify({ metadata: { finalizers: ['tidemark.dev/restore'] } }),
    ]);
  });

  test('the operator (here: admin) writes status freely', async () => {
    await setStatus(name, { phase: 'Approved', approvedBy: [C.user, D.user], approvalSummary: '2/2' });
    assert.equal((await read(name)).status.phase, 'Approved');
  });

  test('users cannot write status themselves (no RBAC on restorerequests/status)', async () => {
    await assertRefused(
      patch(B, name, { status: { approverGroups: ['developers'] } }, 'status'),
      new RegExp(`User "${B.user}" cannot (get|patch) resource "${plural}/status"`),
    );
  });
});

describe('before the operator has listed the approvers', () => {
  const name = 'not-processed-yet';

  before(async () => {
    await create(A, restore(name, A.user));
  });

  test('a would-be approver is told to wait for PendingApproval', async () => {
    await assertRefused(
      approve(C, name, [{ user: C.user }]),
      `${C.user} cannot approve yet: the operator has not yet set who may approve this restore`,
    );
    await assertRefused(approve(C, name, [{ user: C.user }]), /wait until it is PendingApproval/);
  });

  test('a status without approver lists counts as not processed', async () => {
    await setStatus(name, { phase: 'PendingApproval' });
    await assertRefused(approve(C, name, [{ user: C.user }]), /wait until it is PendingApproval/);
  });

  test('once the operator has written the lists, the approver can approve', async () => {
    await setStatus(name, { approverGroups: ['platform-oncall'] });
    await approve(C, name, [{ user: C.user }]);
  });
});

describe('charts/tidemark', () => {
  test('renders the same policy and binding as deploy/', async () => {
    const rendered = policyObjects(
      await helm(
        [
          'template',
          'tidemark',
          join(repoRoot, 'charts', 'tidemark'),
          '--namespace',
          'tidemark-system',
          '--show-only',
          'templates/admission-policy.yaml',
        ],
        workDir.path,
      ),
    );
    const deployed = policyObjects(readFileSync(policyFile, 'utf8'));
    assert.deepEqual(
      rendered.map((o) => [o.kind, o.metadata.name, o.spec]),
      deployed.map((o) => [o.kind, o.metadata.name, o.spec]),
    );
  });
});

function restore(name: string, requestedBy: string): Obj {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'RestoreRequest',
    metadata: { name, namespace },
    spec: { from: { policy: 'tenants', source: 'acme-db' }, target: { original: true }, mode: 'replace', requestedBy },
  };
}

function as(person: Person, args: string[], input?: string): Promise<string> {
  return kubectlAs(cluster, person, args, input);
}

async function create(person: Person, body: Obj, ...flags: string[]): Promise<void> {
  await as(person, ['create', ...flags, '-f', '-'], JSON.stringify(body));
}

async function read(name: string): Promise<Obj> {
  return JSON.parse(await cluster.kubectl(['get', '-n', namespace, `${plural}.${group}`, name, '-o', 'json']));
}

async function patch(person: Person, name: string, body: Obj, subresource?: string): Promise<void> {
  const args = ['patch', '-n', namespace, `${plural}.${group}`, name, '--type=merge', '-p', JSON.stringify(body)];
  await as(person, subresource ? [...args, `--subresource=${subresource}`] : args);
}

function approve(person: Person, name: string, added: Approval[]): Promise<void> {
  return approveAs(cluster, person, namespace, name, added);
}

/** Writes status as the operator does: through the status subresource. */
async function setStatus(name: string, status: Obj): Promise<void> {
  await cluster.kubectl([
    'patch',
    '-n',
    namespace,
    `${plural}.${group}`,
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

/** The request must be refused with a message containing `expected`. */
async function assertRefused(request: Promise<unknown>, expected: string | RegExp): Promise<void> {
  await assert.rejects(request, (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    if (typeof expected === 'string') assert.ok(message.includes(expected), `expected "${expected}" in: ${message}`);
    else assert.match(message, expected);
    return true;
  });
}

function policyObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}
