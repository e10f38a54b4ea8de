import * as k8s from '@kubernetes/client-node';
import type { OperatorContext } from '../context.ts';

/**
 * Agent pods run as the `tidemark-agent` ServiceAccount of their namespace, bound to the
 * `tidemark-agent` ClusterRole (its name from TIDEMARK_AGENT_CLUSTER_ROLE: Helm prefixes it) by a
 * RoleBinding, so an agent can only touch its own namespace.
 */
export async function ensureAgentServiceAccount(ctx: OperatorContext, namespace: string): Promise<void> {
  const name = ctx.settings.serviceAccountName;
  await ctx.core
    .createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'tidemark' } } },
    })
    .catch(ignoreExists);
  const rbac = ctx.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac
    .createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'tidemark' } },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: process.env.TIDEMARK_AGENT_CLUSTER_ROLE ?? 'tidemark-agent',
        },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    })
    .catch(ignoreExists);
}

function ignoreExists(error: unknown): void {
  if ((error as { code?: number }).code !== 409) throw error;
}
