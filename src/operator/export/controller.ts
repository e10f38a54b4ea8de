import type { Backup, BackupExport, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { log } from '../../log.ts';
import type { OperatorContext } from '../context.ts';
import { deleteJobsThatCannotStart, observeJobs, ownerKeysOf, recheckRunningJobsMs } from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { objectLogFields } from '../runtime/log-fields.ts';
import { decideExport, EXPORT_FINALIZER, type ExportObserved } from './decide.ts';

/** The BackupExport controller's shell: observes the Backup, its policy, repositories and Jobs, decides, acts. */
export function exportController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backupexport',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const exp = (await resources.get<BackupExport>('backupexports', namespace, name)) as BackupExport | undefined;
      if (!exp) return undefined;
      const backup = (informers.backups.list(namespace) as Backup[]).find((b) => b.metadata.name === exp.spec.backup);
      const observed: ExportObserved = {
        exp,
        backup,
        policy: (informers.policies.list(namespace) as BackupPolicy[]).find(
          (p) => p.metadata.name === backup?.spec.policy,
        ),
        repositories: new Map(
          (informers.repositories.list(namespace) as BackupRepository[]).map((r) => [r.metadata.name ?? '', r]),
        ),
        jobs: await observeJobs(ctx, exp),
        settings: ctx.settings,
        now: ctx.now(),
      };
      const decision = decideExport(observed);
      if (decision.finalizer === 'add')
        await resources.updateMetadata<BackupExport>('backupexports', namespace, name, (m) =>
          m.finalizers?.includes(EXPORT_FINALIZER)
            ? undefined
            : { ...m, finalizers: [...(m.finalizers ?? []), EXPORT_FINALIZER] },
        );
      const rejected = await createAgentJobs(ctx, namespace, decision.createJobs);
      let status = decision.status;
      if (rejected.size > 0)
        status = {
          ...(status ?? exp.status ?? {}),
          phase: 'Failed',
          error: [...rejected.values()].join('; '),
        };
      if (status && !exp.metadata.deletionTimestamp) await resources.writeStatus('backupexports', exp, status);
      for (const e of decision.events) {
        events.record(exp, e.type, e.reason, e.message);
        // R-AUDIT: who exported what, and where it is; never the link.
        log.info(
          { event: `export-${e.reason}`, ...objectLogFields(exp), backup: exp.spec.backup, phase: status?.phase },
          e.message,
        );
      }
      if (decision.finalizer === 'remove')
        await resources.updateMetadata<BackupExport>('backupexports', namespace, name, (m) => ({
          ...m,
          finalizers: (m.finalizers ?? []).filter((f) => f !== EXPORT_FINALIZER),
        }));
      await deleteJobsThatCannotStart(ctx, observed.jobs);
      const requeue = [decision.requeueAfterMs, recheckRunningJobsMs(ctx, observed.jobs)].filter(
        (ms) => ms !== undefined,
      );
      return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
    },
    hooks,
  );
  controller.watch(informers.exports);
  const waitingIn = (object: { metadata?: { namespace?: string } }) => {
    const namespace = object.metadata?.namespace ?? '';
    return (informers.exports.list(namespace) as BackupExport[])
      .filter((e) => !e.status?.phase || e.status.phase === 'Pending')
      .map((e) => `${namespace}/${e.metadata.name}`);
  };
  controller.watch(informers.backups, waitingIn, (b) => `${b.status?.phase}`);
  controller.watch(informers.jobs, (job) => ownerKeysOf(job, 'BackupExport'));
  return controller;
}
