import type * as k8s from '@kubernetes/client-node';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import {
  deleteJob,
  deleteJobsThatCannotStart,
  observeJobs,
  ownerKeysOf,
  recheckRunningJobsMs,
} from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { setCondition } from '../runtime/conditions.ts';
import { Controller, type ControllerHooks, keyOf, specSignature, splitKey } from '../runtime/controller.ts';
import { withDrillFields } from '../runtime/policy-status.ts';
import { decideDrills } from './decide.ts';

/**
 * The restore drill controller's shell, per policy: observes its Backups and drill Jobs, decides,
 * creates Jobs, writes the drill fields of the policy status and the Restorable condition of the
 * Backups drilled, records Events.
 */
export function drillController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'drill',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const policy = informers.policies.get(name, namespace) as BackupPolicy | undefined;
      if (!policy?.spec.verification?.restoreDrill) return undefined;
      const jobs = await observeJobs(ctx, policy);
      const decision = decideDrills({
        policy,
        backups: ctx.backupsByPolicy.of(namespace, name),
        repositories: new Map(
          (informers.repositories.list(namespace) as BackupRepository[]).map((r) => [r.metadata.name ?? '', r]),
        ),
        jobs,
        claims: informers.claims.list(namespace) as k8s.V1PersistentVolumeClaim[],
        settings: ctx.settings,
        now: ctx.now(),
        random: Math.random,
      });
      // The result first, then the next Job: a crash between them records again, never loses one.
      if (decision.sources.size > 0)
        await resources.writeStatus('backuppolicies', policy, (current) =>
          withDrillFields(current.status, decision.sources),
        );
      for (const { backup: backupName, condition } of decision.restorable) {
        const backup = informers.backups.get(backupName, namespace) as Backup | undefined;
        if (!backup) continue;
        const now = ctx.now();
        await resources.writeStatus('backups', backup, (current) => ({
          ...current.status,
          conditions: setCondition(current.status?.conditions, condition, current.metadata.generation, now),
        }));
      }
      for (const e of decision.events) events.record(policy, e.type, e.reason, e.message);
      for (const body of decision.createClaims)
        await ctx.core.createNamespacedPersistentVolumeClaim({ namespace, body }).catch(unless(409));
      await createAgentJobs(ctx, namespace, decision.createJobs);
      await deleteJobsThatCannotStart(ctx, jobs);
      for (const job of decision.deleteJobs) await deleteJob(ctx, namespace, job);
      for (const name of decision.deleteClaims)
        await ctx.core.deleteNamespacedPersistentVolumeClaim({ name, namespace }).catch(unless(404));
      const requeue = [decision.requeueAfterMs, recheckRunningJobsMs(ctx, jobs)].filter((ms) => ms !== undefined);
      return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
    },
    hooks,
  );
  controller.watch(informers.policies, (p) => [keyOf(p)], specSignature);
  controller.watch(informers.jobs, (job) => ownerKeysOf(job, 'BackupPolicy'));
  // A policy waiting for its first successful Backup drills once one succeeds.
  controller.watch(
    informers.backups,
    (backup) => [`${backup.metadata?.namespace}/${backup.spec.policy}`],
    (backup) => backup.status?.phase ?? '',
  );
  return controller;
}

/** Ignores the API error with this status code (a scratch PVC that exists already, or is gone already). */
const unless = (status: number) => (error: unknown) => {
  if ((error as { code?: number }).code !== status) throw error;
};
