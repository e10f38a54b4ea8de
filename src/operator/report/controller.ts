import type { BackupStatus } from '../../api/backup.ts';
import type { Backup, BackupPolicy, BackupReport } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { LABELS } from '../jobs/labels.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import { labelValue } from '../runtime/labels.ts';
import { decideReports, REPORT_PHASE_LABEL, reportDate, reportStub } from './decide.ts';

/** The Final reports of one policy, as stubs by date, and the day they were listed on. */
interface FinalIndex {
  listedOn: string;
  byDate: Map<string, BackupReport>;
}

/**
 * The daily report controller's shell: per policy, reads its Backups and Open BackupReports from the
 * caches, writes the reports the decision builds and deletes those past the policy's keepDays.
 * Woken by Backup changes and, once a day, by its own requeue just after the local midnight.
 *
 * Final reports (all but today's, mostly) are not cached: keepDays of them for every policy would
 * fill the operator's memory. They are listed once per policy and day, and kept as stubs.
 */
export function reportController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const finals = new Map<string, FinalIndex>();

  const finalReports = async (key: string, policy: BackupPolicy): Promise<FinalIndex> => {
    const today = reportDate(policy, ctx.now());
    const known = finals.get(key);
    if (known?.listedOn === today) return known;
    const { namespace = '', name = '' } = policy.metadata;
    const listed = await resources.list<BackupReport>(
      'backupreports',
      namespace,
      `${LABELS.policy}=${labelValue(name)},${REPORT_PHASE_LABEL}=Final`,
    );
    const index: FinalIndex = {
      listedOn: today,
      byDate: new Map(listed.filter((r) => r.spec.policy === name).map((r) => [r.spec.date, reportStub(r)])),
    };
    finals.set(key, index);
    return index;
  };

  /** Labels a report Final (it leaves the cache) and remembers its stub. */
  const markFinal = async (index: FinalIndex, report: BackupReport) => {
    await resources.updateMetadata<BackupReport>(
      'backupreports',
      report.metadata.namespace ?? '',
      report.metadata.name ?? '',
      (m) => ({
        ...m,
        labels: { ...m.labels, [REPORT_PHASE_LABEL]: 'Final' },
      }),
    );
    index.byDate.set(report.spec.date, reportStub(report));
  };

  const controller = new Controller(
    'report',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const policy = informers.policies.get(name, namespace) as BackupPolicy | undefined;
      if (!policy || policy.metadata.deletionTimestamp) {
        finals.delete(key);
        return undefined;
      }
      const index = await finalReports(key, policy);
      const open = (informers.openReports.list(namespace) as BackupReport[]).filter((r) => r.spec.policy === name);
      // Written Final by a pass that stopped before its label changed (a restart).
      for (const report of open.filter((r) => r.status?.phase === 'Final')) await markFinal(index, report);
      const observed = {
        policy,
        backups: ctx.backupsByPolicy.of(namespace, name),
        reports: [...index.byDate.values(), ...open],
        now: ctx.now(),
        recordsOf: (b: Backup) => ctx.backupObjects.total(b),
      };
      // The cache has no record counts: a first pass names the Backups whose counts the reports show.
      const wanted = new Map<string, Backup>();
      decideReports({
        ...observed,
        objectsOf: (b) => {
          wanted.set(b.metadata.name ?? '', b);
          return [];
        },
      });
      const counts = new Map<string, BackupStatus['objects']>();
      for (const [backupName, cached] of wanted)
        counts.set(backupName, await ctx.backupObjects.of(namespace, backupName, cached));
      const decision = decideReports({ ...observed, objectsOf: (b) => counts.get(b.metadata.name ?? '') });
      for (const report of decision.write) {
        const { status, ...withoutStatus } = report;
        const cached = informers.openReports.get(report.metadata.name ?? '', namespace) as BackupReport | undefined;
        // The status subresource ignores a status sent on create: it is written once the object exists.
        const object = cached ?? (await resources.createOrGet('backupreports', withoutStatus as BackupReport)).object;
        const written = status ? await resources.writeStatus('backupreports', object, status) : false;
        if (status?.phase !== 'Final') continue;
        await markFinal(index, report);
        // Once, by the write that made the report Final (a stale cache finds it already written).
        const summary = decision.events.get(report.metadata.name ?? '');
        if (written && summary) events.record(policy, summary.type, summary.reason, summary.message);
      }
      for (const old of decision.delete) {
        await resources.delete('backupreports', namespace, old);
        for (const [date, stub] of index.byDate) if (stub.metadata.name === old) index.byDate.delete(date);
      }
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
  );
  controller.watch(informers.policies, undefined, (p) =>
    JSON.stringify([
      (p as BackupPolicy).spec.reports,
      (p as BackupPolicy).spec.schedule.timeZone,
      (p as BackupPolicy).spec.sources.map((s) => s.name),
      (p as BackupPolicy).metadata.deletionTimestamp,
    ]),
  );
  controller.watch(
    informers.backups,
    (b) => [`${b.metadata?.namespace}/${(b as Backup).spec.policy}`],
    (b) => {
      const s = (b as Backup).status;
      return JSON.stringify([s?.phase, s?.startTime, s?.completionTime, s?.uploadedBytes]);
    },
  );
  // An Open report deleted by hand is written again.
  controller.watch(
    informers.openReports,
    (r) => [`${r.metadata?.namespace}/${(r as BackupReport).spec.policy}`],
    (r) => JSON.stringify([r.metadata?.deletionTimestamp]),
  );
  return controller;
}
