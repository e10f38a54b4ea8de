import type * as k8s from '@kubernetes/client-node';
import type { OperatorContext } from '../context.ts';
import { ensureAgentServiceAccount } from './service-account.ts';

/**
 * Creates agent Jobs (their ServiceAccount first); a Job that already exists is adopted, not
 * duplicated. The API server's refusals (invalid, forbidden or over quota, namespace terminating...)
 * come back by Job name with its message, for the decision to fail what the Job was for; anything
 * else (the server unreachable, 5xx) throws, for the work queue to retry.
 */
export async function createAgentJobs(
  ctx: OperatorContext,
  namespace: string,
  jobs: k8s.V1Job[],
): Promise<Map<string, string>> {
  const rejected = new Map<string, string>();
  if (jobs.length === 0) return rejected;
  try {
    await ensureAgentServiceAccount(ctx, namespace);
  } catch (error) {
    // Refused (namespace terminating, forbidden, quota): none of the Jobs can run.
    const refusal = refusalOf(error);
    if (!refusal || refusal === 'exists') throw error;
    for (const job of jobs)
      rejected.set(job.metadata?.name ?? '', `the agent ServiceAccount could not be set up: ${refusal}`);
    return rejected;
  }
  for (const job of jobs) {
    try {
      await ctx.batch.createNamespacedJob({ namespace, body: job });
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal === 'exists') continue;
      if (!refusal) throw error;
      rejected.set(job.metadata?.name ?? '', `Job ${job.metadata?.name}: ${refusal}`);
    }
  }
  return rejected;
}

/** 'exists' for 409, the API server's message for a refusal (4xx), undefined for anything worth retrying. */
function refusalOf(error: unknown): string | 'exists' | undefined {
  const { code, body } = error as { code?: number; body?: unknown };
  if (code === 409) return 'exists';
  if (code === undefined || code < 400 || code >= 500 || code === 429 || code === 408) return undefined;
  let message = '';
  try {
    message =
      (typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string }))
        ?.message ?? '';
  } catch {
    message = String(body ?? '');
  }
  return `the API server refused it (${code})${message ? `: ${message}` : ''}`;
}
