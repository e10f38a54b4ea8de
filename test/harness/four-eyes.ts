// The four-eyes approval of RestoreRequests as people meet it: deploy/admission-policy.yaml on a real
// API server, users impersonated with RBAC that lets them write RestoreRequests but not their status.
//
// Users act through kubectl --as/--as-group: @kubernetes/client-node 1.4 sends Impersonate-User but
// drops the kubeconfig's impersonated groups, and groups are what approver rules are about.
import { join } from 'node:path';
import type { Cluster } from './cluster.ts';
import { repoRoot } from './tools.ts';

export interface Person {
  user: string;
  groups: string[];
}

export interface Approval {
  user: string;
  /** The approver's groups; approveAs records the approving person's own when this is absent. */
  groups?: string[];
  comment?: string;
}

export const admissionPolicyFile = join(repoRoot, 'deploy', 'admission-policy.yaml');

/** kubectl as `person`: impersonating the user and each of their groups. */
export function kubectlAs(cluster: Cluster, person: Person, args: string[], input?: string): Promise<string> {
  return cluster.kubectl([`--as=${person.user}`, ...person.groups.map((g) => `--as-group=${g}`), ...args], input);
}

/**
 * Applies the admission policy and lets `people` (by their groups, or by user when they have none)
 * create, read and patch RestoreRequests in `namespace`; resolves once the API server enforces the
 * policy (probed with a dry-run create in someone else's name, which it must refuse).
 */
export async function installFourEyes(cluster: Cluster, namespace: string, people: Person[]): Promise<void> {
  await cluster.kubectl(['apply', '--server-side', '-f', admissionPolicyFile]);
  const groups = [...new Set(people.flatMap((p) => p.groups))];
  const users = people.filter((p) => p.groups.length === 0).map((p) => p.user);
  await cluster.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: 'restore-requester' },
          rules: [
            {
              apiGroups: ['tidemark.dev'],
              resources: ['restorerequests'],
              verbs: ['create', 'get', 'list', 'update', 'patch'],
            },
          ],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'restore-requesters', namespace },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'restore-requester' },
          subjects: [
            ...groups.map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name })),
            ...users.map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name })),
          ],
        },
      ],
    }),
  );
  const [prober = { user: 'nobody', groups: [] }] = people;
  const probe = {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'RestoreRequest',
    metadata: { name: 'four-eyes-probe', namespace },
    spec: {
      from: { policy: 'probe', source: 'probe' },
      target: { original: true },
      mode: 'replace',
      requestedBy: `not-${prober.user}`,
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    let last = 'the dry-run create was allowed';
    try {
      await kubectlAs(cluster, prober, ['create', '--dry-run=server', '-f', '-'], JSON.stringify(probe));
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
      if (last.includes('cannot create a restore requested by')) return;
    }
    if (Date.now() > deadline) throw new Error(`the admission policy did not take effect within 30s: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Adds `added` to the stored approvals with a JSON patch, as docs/validation.md tells approvers to.
 * Each approval records `person`'s groups unless it names its own (as an approver in a group must).
 */
export async function approveAs(
  cluster: Cluster,
  person: Person,
  namespace: string,
  name: string,
  added: Approval[],
): Promise<void> {
  const current = JSON.parse(
    await cluster.kubectl(['get', '-n', namespace, 'restorerequests.tidemark.dev', name, '-o', 'json']),
  ) as { spec: { approvals?: Approval[] } };
  const recorded = added.map((a) => (a.groups || person.groups.length === 0 ? a : { ...a, groups: person.groups }));
  const ops = current.spec.approvals?.length
    ? recorded.map((value) => ({ op: 'add', path: '/spec/approvals/-', value }))
    : [{ op: 'add', path: '/spec/approvals', value: recorded }];
  await kubectlAs(cluster, person, [
    'patch',
    '-n',
    namespace,
    'restorerequest',
    name,
    '--type=json',
    '-p',
    JSON.stringify(ops),
  ]);
}
