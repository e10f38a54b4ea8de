import type { BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { observeJobs } from '../runtime/agent-result.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { createAgentJobs } from '../runtime/jobs.ts';
import { newestFirst } from '../runtime/time.ts';
import { decideRepository, REPOSITORY_LABEL } from './decide.ts';

/** The BackupRepository controller's shell: runs probe Jobs and records what they found. */
export function backupRepositoryController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backuprepository',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const repository = informers.repositories.get(name, namespace) as BackupRepository | undefined;
      if (!repository || repository.metadata.deletionTimestamp) return undefined;
      const probes = newestFirst(
        [...(await observeJobs(ctx, namespace, REPOSITORY_LABEL, name)).values()],
        (p) => p.job.metadata?.creationTimestamp,
      );
      const decision = decideRepository({ repository, probes, settings: ctx.settings, now: ctx.now() });
      await createAgentJobs(ctx, namespace, decision.createJob ? [decision.createJob] : []);
      await resources.writeStatus('backuprepositories', repository, decision.status);
      for (const e of decision.events) events.record(repository, e.type, e.reason, e.message);
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
  );
  controller.watch(informers.repositories);
  controller.watch(informers.jobs, (job) => {
    const repository = job.metadata?.labels?.[REPOSITORY_LABEL];
    return repository ? [`${job.metadata?.namespace}/${repository}`] : [];
  });
  return controller;
}
