import type { Backup, BackupPolicy, BackupReport } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { decideReports } from './decide.ts';

/**
 * The daily report controller's shell: per policy, reads its Backups and BackupReports from the
 * caches, writes the reports the decision builds and deletes those past the policy's keepDays.
 * Woken by Backup changes and, once a day, by its own requeue just after the local midnight.
 */
export function reportController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'report',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const policy = informers.policies.get(name, namespace) as BackupPolicy | undefined;
      if (!policy || policy.metadata.deletionTimestamp) return undefined;
      const decision = decideReports({
        policy,
        backups: (informers.backups.list(namespace) as Backup[]).filter((b) => b.spec.policy === name),
        reports: (informers.reports.list(namespace) as BackupReport[]).filter((r) => r.spec.policy === name),
        now: ctx.now(),
      });
      for (const report of decision.write) {
        const { status, ...withoutStatus } = report;
        const cached = informers.reports.get(report.metadata.name ?? '', namespace) as BackupReport | undefined;
        // The status subresource ignores a status sent on create: it is written once the object exists.
        const object = cached ?? (await resources.createOrGet('backupreports', withoutStatus as BackupReport)).object;
        const written = status ? await resources.writeStatus('backupreports', object, status) : false;
        // Once, by the write that made the report Final (a stale cache finds it already written).
        const summary = decision.events.get(report.metadata.name ?? '');
        if (written && summary) events.record(policy, summary.type, summary.reason, summary.message);
      }
      for (const old of decision.delete) await resources.delete('backupreports', namespace, old);
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
  );
  controller.watch(informers.policies, undefined, (p) =>
    JSON.stringify([
      (p as BackupPolicy).spec.reports,
      (p as BackupPolicy).spec.schedule.timeZone,
      (p as BackupPolicy).spec.sources.map((s) => s.name),
    ]),
  );
  controller.watch(
    informers.backups,
    (b) => [`${b.metadata?.namespace}/${(b as Backup).spec.policy}`],
    (b) => {
      const s = (b as Backup).status;
      return JSON.stringify([s?.phase, s?.startTime, s?.completionTime, s?.uploadedBytes, s?.objects?.length]);
    },
  );
  // A report deleted by hand (or by its day passing keepDays) is looked at again.
  controller.watch(
    informers.reports,
    (r) => [`${r.metadata?.namespace}/${(r as BackupReport).spec.policy}`],
    (r) => JSON.stringify([r.metadata?.deletionTimestamp]),
  );
  return controller;
}
