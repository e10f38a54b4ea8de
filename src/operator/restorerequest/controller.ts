import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { deleteJobsThatCannotStart, observeJobs, ownerKeysOf, recheckRunningJobsMs } from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { decideRestore, expectedCounts, type RestoreObserved } from './decide.ts';

/** The RestoreRequest controller's shell: observes Backups, policies, its Jobs and PVCs, decides, creates Jobs, writes status. */
export function restoreRequestController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'restorerequest',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const request = (await resources.get<RestoreRequest>('restorerequests', namespace, name)) as
        | RestoreRequest
        | undefined;
      if (!request || request.metadata.deletionTimestamp) return undefined;
      const phase = request.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') return undefined;
      const byName = <T extends { metadata: { name?: string } }>(items: T[]) =>
        new Map(items.map((i) => [i.metadata.name ?? '', i]));
      const target = request.spec.target;
      const observed: RestoreObserved = {
        request,
        backups: informers.backups.list(namespace) as Backup[],
        policies: byName(informers.policies.list(namespace) as BackupPolicy[]),
        repositories: byName(informers.repositories.list(namespace) as BackupRepository[]),
        jobs: await observeJobs(ctx, request),
        ...((target.volume || target.original) && !request.status?.jobName ? await claimsIn(ctx, namespace) : {}),
        settings: ctx.settings,
        now: ctx.now(),
      };
      let decision = decideRestore(observed);
      const rejected = await createAgentJobs(ctx, namespace, decision.createJobs);
      // The API server refused the Job: decide again from the status just decided, knowing it.
      if (rejected.size > 0 && decision.status)
        decision = {
          ...decideRestore({ ...observed, request: { ...request, status: decision.status }, rejected }),
          createJobs: [],
        };
      // The cache has no record counts: the Backup's are read when its restore starts.
      const backupName = decision.status?.backupName;
      if (decision.createJobs.length > 0 && decision.status?.expected && backupName) {
        const backup = informers.backups.get(backupName, namespace) as Backup | undefined;
        const policy = backup && observed.policies.get(backup.spec.policy);
        const objects = backup && (await ctx.backupObjects.of(namespace, backupName, backup));
        if (backup && policy)
          decision.status.expected = expectedCounts(
            { ...backup, status: { ...backup.status, objects } },
            policy,
            request.spec.target.database,
          );
      }
      if (decision.status) await resources.writeStatus('restorerequests', request, decision.status);
      for (const e of decision.events) events.record(request, e.type, e.reason, e.message);
      await deleteJobsThatCannotStart(ctx, observed.jobs);
      const requeue = [decision.requeueAfterMs, recheckRunningJobsMs(ctx, observed.jobs)].filter(
        (ms) => ms !== undefined,
      );
      return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
    },
    hooks,
  );
  controller.watch(informers.restores);
  // A request that waits for a Backup (or a repository) moves on when one changes in its namespace.
  const waitingIn = (object: { metadata?: { namespace?: string } }) => {
    const namespace = object.metadata?.namespace ?? '';
    return (informers.restores.list(namespace) as RestoreRequest[])
      .filter((r) => isWaiting(r))
      .map((r) => `${namespace}/${r.metadata.name}`);
  };
  controller.watch(informers.backups, waitingIn, (b) => `${b.status?.phase}/${b.metadata?.deletionTimestamp ?? ''}`);
  controller.watch(informers.repositories, waitingIn);
  controller.watch(informers.jobs, (job) => ownerKeysOf(job, 'RestoreRequest'));
  return controller;
}

/** Not yet running: waiting for its Backup or repository, or for approvals (its Backup may go away). */
function isWaiting(request: RestoreRequest): boolean {
  const phase = request.status?.phase;
  return !request.status?.jobName && phase !== 'Succeeded' && phase !== 'Failed';
}

async function claimsIn(
  ctx: OperatorContext,
  namespace: string,
): Promise<{ claims: Set<string>; claimLabels: Map<string, Record<string, string>> }> {
  const list = await ctx.core.listNamespacedPersistentVolumeClaim({ namespace });
  const claimLabels = new Map(list.items.map((c) => [c.metadata?.name ?? '', c.metadata?.labels ?? {}]));
  return { claims: new Set(claimLabels.keys()), claimLabels };
}
