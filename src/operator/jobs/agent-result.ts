import type * as k8s from '@kubernetes/client-node';
import type { AgentTaskName } from '../../agent/tasks/names.ts';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { OperatorContext } from '../context.ts';
import { instant, newestFirst } from '../runtime/time.ts';
import { POD_START_TIMEOUT_MS } from './agent-job.ts';
import { OWNER_ANNOTATIONS } from './labels.ts';

/** A Job of task N (any task by default) as a controller sees it. */
export interface JobObserved<N extends AgentTaskName = AgentTaskName> {
  job: k8s.V1Job;
  /** The agent's result from its pod's termination message, once the Job ended. */
  result?: AgentResult<N>;
  /** Its pod could not start within the pod start timeout: reported as Failed (PodCannotStart), to be deleted. */
  cannotStart?: boolean;
}

export function jobOutcome(job: k8s.V1Job): 'Complete' | 'Failed' | undefined {
  const ended = job.status?.conditions?.find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  return ended?.type as 'Complete' | 'Failed' | undefined;
}

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

/** An object agent Jobs work for: Jobs are matched to it by uid, never by name. */
export interface JobOwner {
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string };
}

/** Whether a Job was created for this very object (by owner reference, or the owner annotations of a forget Job). */
export function isJobOf(job: k8s.V1Job, owner: JobOwner): boolean {
  const uid = owner.metadata.uid;
  if (!uid) return false;
  return (
    job.metadata?.annotations?.[OWNER_ANNOTATIONS.uid] === uid ||
    (job.metadata?.ownerReferences ?? []).some((r) => r.uid === uid)
  );
}

/** The keys (namespace/name) of the objects of `kind` a Job works for: for a controller's Job watch. */
export function ownerKeysOf(job: k8s.V1Job, kind: string): string[] {
  const namespace = job.metadata?.namespace;
  const names = new Set((job.metadata?.ownerReferences ?? []).filter((r) => r.kind === kind).map((r) => r.name));
  const annotations = job.metadata?.annotations ?? {};
  const annotated = annotations[OWNER_ANNOTATIONS.name];
  if (annotations[OWNER_ANNOTATIONS.kind] === kind && annotated) names.add(annotated);
  return [...names].map((name) => `${namespace}/${name}`);
}

/** Container waiting reasons a pod does not get out of by itself waiting a little longer. */
const CANNOT_START = new Set([
  'CreateContainerConfigError',
  'CreateContainerError',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
]);

/**
 * Why a running Job's pod cannot start, once it has waited longer than the timeout: a container
 * waiting with one of CANNOT_START since the pod was created (the kubelet's message names the
 * Secret and key, or the image).
 */
export function podCannotStart(pods: k8s.V1Pod[], now: Date, timeoutMs: number): string | undefined {
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Pending') continue;
    const waited = now.getTime() - (instant(pod.metadata?.creationTimestamp) ?? now.getTime());
    if (waited < timeoutMs) continue;
    for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const waiting = status.state?.waiting;
      if (waiting?.reason && CANNOT_START.has(waiting.reason))
        return `pod ${pod.metadata?.name} could not start for ${Math.round(waited / 1000)}s: container ${status.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
    }
  }
  return undefined;
}

/**
 * The Jobs created for `owner` (from the informer cache), by name, with each ended Job's result. A
 * running Job whose pod cannot start (podCannotStart) is reported as ended: Failed with reason
 * PodCannotStart and a result carrying the kubelet's message, and `cannotStart` set so the shell
 * deletes it (deleteJobsThatCannotStart) once the status is written.
 */
export async function observeJobs(ctx: OperatorContext, owner: JobOwner): Promise<Map<string, JobObserved>> {
  const namespace = owner.metadata.namespace ?? '';
  const jobs = (ctx.informers.jobs.list(namespace) as k8s.V1Job[]).filter((j) => isJobOf(j, owner));
  const observed = new Map<string, JobObserved>();
  const now = ctx.now();
  const timeoutMs = podStartTimeoutMs(ctx);
  for (const job of jobs) {
    const name = job.metadata?.name ?? '';
    let entry: JobObserved = { job };
    if (jobOutcome(job)) {
      const result = await resultOf(ctx, namespace, name);
      if (result) entry.result = result;
    } else if (mayBeUnableToStart(job, now, timeoutMs)) {
      const pods = await ctx.core.listNamespacedPod({
        namespace,
        labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata?.uid}`,
      });
      const message = podCannotStart(pods.items, now, timeoutMs);
      if (message) entry = cannotStart(job, message, now);
    }
    observed.set(name, entry);
  }
  return observed;
}

/**
 * Whether a running Job's pods are worth listing: none of them is ready yet, and the Job is older
 * than the timeout (a younger one's pods cannot have waited that long). Keeps the pod list off the
 * reconcile of every Job that is simply running.
 */
function mayBeUnableToStart(job: k8s.V1Job, now: Date, timeoutMs: number): boolean {
  if (!job.metadata?.uid || job.metadata.deletionTimestamp || (job.status?.ready ?? 0) > 0) return false;
  return now.getTime() - (instant(job.metadata.creationTimestamp) ?? now.getTime()) >= timeoutMs;
}

const podStartTimeoutMs = (ctx: OperatorContext) => ctx.settings.podStartTimeoutMs ?? POD_START_TIMEOUT_MS;

/** How soon to look at an object again while a Job of it runs: pods are not watched (at most a minute). */
export const runningJobRecheckMs = (ctx: OperatorContext) => Math.min(60_000, podStartTimeoutMs(ctx));

function cannotStart(job: k8s.V1Job, message: string, now: Date): JobObserved {
  const failed: k8s.V1Job = structuredClone(job);
  failed.status = {
    ...failed.status,
    conditions: [
      ...(failed.status?.conditions ?? []),
      { type: 'Failed', status: 'True', reason: 'PodCannotStart', message, lastTransitionTime: now },
    ],
  };
  return { job: failed, result: { ok: false, error: { code: 'PodCannotStart', message } }, cannotStart: true };
}

/**
 * Pods are not watched, and a pod stuck waiting changes nothing on its Job: while any Job runs, the
 * object is looked at again within the pod start timeout (at most a minute apart).
 */
export function recheckRunningJobsMs(ctx: OperatorContext, jobs: Map<string, JobObserved>): number | undefined {
  if (![...jobs.values()].some((j) => !jobOutcome(j.job))) return undefined;
  return runningJobRecheckMs(ctx);
}

/** Deletes (with their pods) the Jobs observeJobs reported as unable to start. */
export async function deleteJobsThatCannotStart(ctx: OperatorContext, jobs: Map<string, JobObserved>): Promise<void> {
  for (const { job, cannotStart } of jobs.values())
    if (cannotStart) await deleteJob(ctx, job.metadata?.namespace ?? '', job.metadata?.name ?? '');
}

/** Deletes a Job with its pods; one already gone is fine. */
export async function deleteJob(ctx: OperatorContext, namespace: string, name: string): Promise<void> {
  try {
    await ctx.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
  } catch (error) {
    if ((error as { code?: number }).code !== 404) throw error;
  }
}
