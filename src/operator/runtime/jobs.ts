import type * as k8s from '@kubernetes/client-node';
import { ensureAgentServiceAccount } from '../backup/service-account.ts';
import type { OperatorContext } from '../context.ts';

/** Creates agent Jobs (their ServiceAccount first); a Job that already exists is adopted, not duplicated. */
export async function createAgentJobs(ctx: OperatorContext, namespace: string, jobs: k8s.V1Job[]): Promise<void> {
  if (jobs.length === 0) return;
  await ensureAgentServiceAccount(ctx, namespace);
  for (const job of jobs) {
    try {
      await ctx.batch.createNamespacedJob({ namespace, body: job });
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
}
