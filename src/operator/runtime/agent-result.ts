import type * as k8s from '@kubernetes/client-node';
import type { AgentResult } from '../../agent/result.ts';
import { type JobObserved, jobOutcome } from '../backup/decide.ts';
import type { OperatorContext } from '../context.ts';
import { newestFirst } from './time.ts';

/** The agent's result: the termination message of the Job's newest pod that ended. */
export async function resultOf(ctx: OperatorContext, namespace: string, job: string): Promise<AgentResult | undefined> {
  const pods = await ctx.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` });
  const messages = newestFirst(
    pods.items.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated).filter((t) => t?.message),
    (t) => t?.finishedAt,
  );
  for (const terminated of messages) {
    try {
      return JSON.parse(terminated?.message ?? '') as AgentResult;
    } catch {
      return { ok: false, error: { code: 'Internal', message: (terminated?.message ?? '').slice(-1024) } };
    }
  }
  return undefined;
}

/** The Jobs carrying `label=value` in a namespace (from the informer cache), with each ended Job's result. */
export async function observeJobs(
  ctx: OperatorContext,
  namespace: string,
  label: string,
  value: string,
): Promise<Map<string, JobObserved>> {
  const jobs = (ctx.informers.jobs.list(namespace) as k8s.V1Job[]).filter((j) => j.metadata?.labels?.[label] === value);
  const observed = new Map<string, JobObserved>();
  for (const job of jobs) {
    const entry: JobObserved = { job };
    if (jobOutcome(job)) {
      const result = await resultOf(ctx, namespace, job.metadata?.name ?? '');
      if (result) entry.result = result;
    }
    observed.set(job.metadata?.name ?? '', entry);
  }
  return observed;
}
