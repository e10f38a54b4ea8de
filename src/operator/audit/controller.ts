import type { BackupPolicyStatus } from '../../api/backuppolicy.ts';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { deleteJobsThatCannotStart, observeJobs, ownerKeysOf, recheckRunningJobsMs } from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { LABELS } from '../jobs/labels.ts';
import { claimsOf } from '../runtime/claims.ts';
import { Controller, type ControllerHooks, specSignature, splitKey } from '../runtime/controller.ts';
import { type AuditDecision, type AuditObserved, decideAudits, lastAuditOf, sourcesNeedingClaims } from './decide.ts';

/**
 * The audit controller's shell: for policies with `verification.audit`, observes their audit Jobs,
 * decides, creates Jobs, writes each source's lastAudit onto the policy's fresh status and records
 * the Events of the audits it wrote.
 */
export function auditController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'audit',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const policy = informers.policies.get(name, namespace) as BackupPolicy | undefined;
      if (!policy?.spec.verification?.audit || policy.metadata.deletionTimestamp) return undefined;
      const jobs = await observeJobs(ctx, policy);
      const now = ctx.now();
      const claims = new Map<string, string[]>();
      for (const source of sourcesNeedingClaims(policy, jobs, now))
        claims.set(source.name, await claimsOf(ctx, namespace, source.volume));
      const repository = informers.repositories.get(policy.spec.repository, namespace) as BackupRepository | undefined;
      const observed: AuditObserved = {
        policy,
        backups: ctx.backupsByPolicy.of(namespace, name),
        ...(repository ? { repository } : {}),
        jobs,
        claims,
        settings: ctx.settings,
        now,
      };
      let decision = decideAudits(observed);
      const rejected = await createAgentJobs(ctx, namespace, decision.createJobs);
      if (rejected.size > 0) decision = { ...decideAudits({ ...observed, rejected }), createJobs: [] };
      await writeAudits(policy, decision);
      await deleteJobsThatCannotStart(ctx, jobs);
      const requeue = [decision.requeueAfterMs, recheckRunningJobsMs(ctx, jobs)].filter(
        (ms): ms is number => ms !== undefined,
      );
      return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
    },
    hooks,
  );
  controller.watch(informers.policies, undefined, specSignature);
  controller.watch(informers.jobs, (job) =>
    job.metadata?.labels?.[LABELS.task] === 'audit' ? ownerKeysOf(job, 'BackupPolicy') : [],
  );
  return controller;

  /**
   * Sets each audited source's lastAudit on the status as it is on the server (the policy controller
   * writes the rest of it); a slot another pass already recorded is left alone, and its Event is not
   * recorded twice.
   */
  async function writeAudits(policy: BackupPolicy, decision: AuditDecision) {
    if (decision.audits.length === 0) return;
    const written = await resources.writeStatus<BackupPolicy>('backuppolicies', policy, (current) => {
      const status: BackupPolicyStatus = current.status ?? {};
      const sources = [...(status.sources ?? [])];
      for (const { source, lastAudit } of decision.audits) {
        const recorded = lastAuditOf(status, source);
        if (recorded && Date.parse(recorded.scheduledTime) >= Date.parse(lastAudit.scheduledTime)) continue;
        const i = sources.findIndex((s) => s.name === source);
        if (i >= 0) sources[i] = { ...sources[i], name: source, lastAudit };
        else sources.push({ name: source, lastAudit });
      }
      return { ...status, sources };
    });
    if (written) for (const e of decision.events) events.record(policy, e.type, e.reason, e.message);
  }
}
