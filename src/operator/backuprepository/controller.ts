import type { BackupRepositoryStatus } from '../../api/backuprepository.ts';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { deleteJobsThatCannotStart, observeJobs, ownerKeysOf } from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { LABELS } from '../jobs/labels.ts';
import { setCondition } from '../runtime/conditions.ts';
import { Controller, type ControllerHooks, specSignature, splitKey } from '../runtime/controller.ts';
import { namespaceTerminating } from '../runtime/namespaces.ts';
import { decideRepository, probesOf } from './decide.ts';
import { decideInUse, IN_USE_FINALIZER } from './in-use.ts';

/**
 * The BackupRepository controller's shell: runs probe Jobs and records what they found; holds the
 * in-use finalizer while policies use the repository.
 */
export function backupRepositoryController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backuprepository',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const repository = informers.repositories.get(name, namespace) as BackupRepository | undefined;
      if (!repository) return undefined;
      const deleting = Boolean(repository.metadata.deletionTimestamp);
      const inUse = decideInUse({
        repository,
        policies: informers.policies.list(namespace) as BackupPolicy[],
        namespaceTerminating: deleting && (await namespaceTerminating(ctx, namespace)),
      });
      const withInUse = (status: BackupRepositoryStatus): BackupRepositoryStatus => ({
        ...status,
        conditions: setCondition(status.conditions, inUse.condition, repository.metadata.generation, ctx.now()),
      });
      if (deleting) {
        if (!repository.metadata.finalizers?.includes(IN_USE_FINALIZER)) return undefined;
        await resources.writeStatus('backuprepositories', repository, withInUse(repository.status ?? {}));
        if (inUse.event) events.record(repository, inUse.event.type, inUse.event.reason, inUse.event.message);
        await setInUseFinalizer(ctx, repository, inUse.finalizer);
        return undefined;
      }
      await setInUseFinalizer(ctx, repository, inUse.finalizer);
      const jobs = await observeJobs(ctx, repository);
      const probes = probesOf(jobs.values());
      const observed = { repository, probes, settings: ctx.settings, now: ctx.now() };
      let decision = decideRepository(observed);
      const rejected = await createAgentJobs(ctx, namespace, decision.createJob ? [decision.createJob] : []);
      if (rejected.size > 0) decision = decideRepository({ ...observed, rejected });
      await resources.writeStatus('backuprepositories', repository, withInUse(decision.status));
      for (const e of decision.events) events.record(repository, e.type, e.reason, e.message);
      await deleteJobsThatCannotStart(ctx, jobs);
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
  );
  controller.watch(informers.repositories);
  controller.watch(informers.jobs, (job) =>
    job.metadata?.labels?.[LABELS.task] === 'probe' ? ownerKeysOf(job, 'BackupRepository') : [],
  );
  // A policy starting or ceasing to use a repository (or going away) changes in-use finalizers: the
  // repository it used before is not known here, so every repository of the namespace is looked at.
  controller.watch(
    informers.policies,
    (policy) =>
      (informers.repositories.list(policy.metadata?.namespace) as BackupRepository[]).map(
        (r) => `${r.metadata.namespace}/${r.metadata.name}`,
      ),
    specSignature,
  );
  return controller;
}

async function setInUseFinalizer(ctx: OperatorContext, repository: BackupRepository, present: boolean) {
  if ((repository.metadata.finalizers?.includes(IN_USE_FINALIZER) ?? false) === present) return;
  const { namespace = '', name = '' } = repository.metadata;
  await ctx.resources.updateMetadata<BackupRepository>('backuprepositories', namespace, name, (m) => {
    const has = m.finalizers?.includes(IN_USE_FINALIZER) ?? false;
    if (has === present) return undefined;
    const others = (m.finalizers ?? []).filter((f) => f !== IN_USE_FINALIZER);
    return { ...m, finalizers: present ? [...others, IN_USE_FINALIZER] : others };
  });
}
