import type { BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { deleteJobsThatCannotStart, observeJobs, ownerKeysOf } from '../runtime/agent-result.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { createAgentJobs } from '../runtime/jobs.ts';
import { decideRepository } from './decide.ts';

/** The BackupRepository controller's shell: runs probe Jobs and records what they found. */
export function backupRepositoryController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backuprepository',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const repository = informers.repositories.get(name, namespace) as BackupRepository | undefined;
      if (!repository || repository.metadata.deletionTimestamp) return undefined;
      const jobs = await observeJobs(ctx, repository);
      const probes = [...jobs.values()].sort((a, b) =>
        String(b.job.metadata?.creationTimestamp ?? '').localeCompare(String(a.job.metadata?.creationTimestamp ?? '')),
      );
      const decision = decideRepository({ repository, probes, settings: ctx.settings, now: ctx.now() });
      await createAgentJobs(ctx, namespace, decision.createJob ? [decision.createJob] : []);
      await resources.writeStatus('backuprepositories', repository, decision.status);
      for (const e of decision.events) events.record(repository, e.type, e.reason, e.message);
      await deleteJobsThatCannotStart(ctx, jobs);
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
  );
  controller.watch(informers.repositories);
  controller.watch(informers.jobs, (job) => ownerKeysOf(job, 'BackupRepository'));
  return controller;
}
