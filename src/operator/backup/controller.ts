import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import {
  deleteJobsThatCannotStart,
  observeJobs,
  ownerKeysOf,
  recheckRunningJobsMs,
  runningJobRecheckMs,
} from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { claimsOf } from '../runtime/claims.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { namespaceTerminating } from '../runtime/namespaces.ts';
import { type BackupObserved, changesNothing, decideBackup, needsClaims, SNAPSHOT_FINALIZER } from './decide.ts';
import {
  createVolumeSnapshotObjects,
  deleteVolumeSnapshotObjects,
  observeVolumeSnapshots,
} from './volume-snapshot-shell.ts';

/** The Backup controller's shell: observes Jobs and PVCs, decides, creates Jobs, writes status and finalizers. */
export function backupController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backup',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const observe = async (backup: Backup): Promise<BackupObserved> => {
        const policy = informers.policies.get(backup.spec.policy, namespace) as BackupPolicy | undefined;
        const observed: BackupObserved = {
          backup,
          ...(policy ? { policy } : {}),
          repositories: new Map(
            (informers.repositories.list(namespace) as BackupRepository[]).map((r) => [r.metadata.name ?? '', r]),
          ),
          claims: needsClaims(backup)
            ? await claimsOf(ctx, namespace, policy?.spec.sources.find((s) => s.name === backup.spec.source)?.volume)
            : [],
          jobs: await observeJobs(ctx, backup),
          settings: ctx.settings,
          now: ctx.now(),
          ...(backup.metadata.deletionTimestamp
            ? { namespaceTerminating: await namespaceTerminating(ctx, namespace) }
            : {}),
        };
        if (usesVolumeSnapshots(backup, policy))
          observed.volumeSnapshots = await observeVolumeSnapshots(ctx, backup, observed.claims);
        return observed;
      };
      // Decided first from the cache (no status.objects: runtime/cached.ts), which for a finished Backup
      // changes nothing: a GET per Backup cost a request per Backup of the whole history at every start.
      // A decision that acts is made again from a fresh read (changesNothing).
      const cached = informers.backups.get(name, namespace) as Backup | undefined;
      if (!cached) return undefined;
      let observed = await observe(cached);
      let decision = decideBackup(observed);
      if (!changesNothing(decision, cached)) {
        const fresh = await resources.get<Backup>('backups', namespace, name);
        if (!fresh) return undefined;
        observed = await observe(fresh);
        decision = decideBackup(observed);
      }
      const { backup } = observed;
      await createVolumeSnapshotObjects(ctx, decision.createVolumeSnapshotObjects ?? []);
      const rejected = await createAgentJobs(ctx, namespace, decision.createJobs);
      // The API server refused a Job: decide again knowing it (nothing else was created for it).
      if (rejected.size > 0)
        decision = { ...decideBackup({ ...observed, rejected }), createJobs: [], createVolumeSnapshotObjects: [] };
      if (decision.deleteVolumeSnapshotObjects)
        await deleteVolumeSnapshotObjects(ctx, namespace, decision.deleteVolumeSnapshotObjects);
      if (decision.addFinalizer)
        await resources.updateMetadata<Backup>('backups', namespace, name, (m) => ({
          ...m,
          finalizers: [...new Set([...(m.finalizers ?? []), SNAPSHOT_FINALIZER])],
        }));
      if (decision.status && !backup.metadata.deletionTimestamp)
        await resources.writeStatus('backups', backup, decision.status);
      for (const e of decision.events) events.record(backup, e.type, e.reason, e.message);
      if (decision.removeFinalizer)
        await resources.updateMetadata<Backup>('backups', namespace, name, (m) => ({
          ...m,
          finalizers: (m.finalizers ?? []).filter((f) => f !== SNAPSHOT_FINALIZER),
        }));
      await deleteJobsThatCannotStart(ctx, observed.jobs);
      const running = decision.status?.phase === 'Running' || decision.createJobs.length > 0;
      const requeue = [
        running ? runningJobRecheckMs(ctx) : recheckRunningJobsMs(ctx, observed.jobs),
        decision.requeueAfterMs,
      ].filter((ms): ms is number => ms !== undefined);
      return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
    },
    hooks,
  );
  controller.watch(informers.backups);
  controller.watch(informers.jobs, (job) => ownerKeysOf(job, 'Backup'));
  // A Backup applied before its policy or repository waits (Pending): their arrival requeues it.
  const waiting = (namespace: string | undefined, matches: (b: Backup) => boolean) =>
    (informers.backups.list(namespace) as Backup[])
      .filter((b) => (b.status?.phase ?? 'Pending') === 'Pending' && matches(b))
      .map((b) => `${b.metadata.namespace}/${b.metadata.name}`);
  controller.watch(informers.policies, (policy) =>
    waiting(policy.metadata?.namespace, (b) => b.spec.policy === policy.metadata?.name),
  );
  controller.watch(informers.repositories, (repository) => waiting(repository.metadata?.namespace, () => true));
  return controller;
}

/** Only a volume source with volumeSnapshotClassName, and not while the Backup is being deleted. */
function usesVolumeSnapshots(backup: Backup, policy: BackupPolicy | undefined): boolean {
  if (backup.metadata.deletionTimestamp) return false;
  return Boolean(policy?.spec.sources.find((s) => s.name === backup.spec.source)?.volume?.volumeSnapshotClassName);
}
