import type * as k8s from '@kubernetes/client-node';
import type { AuditReport } from '../../agent/tasks/audit.ts';
import type { AgentResult } from '../../agent/tasks/registry.ts';
import type { BackupPolicyStatus, LastAudit, Source } from '../../api/backuppolicy.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { lastSuccessfulBackup } from '../backuppolicy/rpo.ts';
import { nextRun, previousRun } from '../backuppolicy/schedule.ts';
import type { AgentSettings } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { LABELS } from '../jobs/labels.ts';
import { labelValue } from '../runtime/labels.ts';
import { AUDIT_SLOT, AUDITED_BACKUP, auditJob, auditJobName } from './job.ts';

const AUDIT_EVENT_REASONS = ['AuditClean', 'AuditFoundMissing', 'AuditFailed', 'AuditSkipped'] as const;
export type AuditEventReason = (typeof AUDIT_EVENT_REASONS)[number];

export interface AuditObserved {
  policy: BackupPolicy;
  /** Backups of this policy. */
  backups: Backup[];
  /** The policy's primary BackupRepository, when it exists. */
  repository?: BackupRepository;
  /** Jobs created for this policy instance, by name. */
  jobs: Map<string, JobObserved>;
  /** Jobs the API server refused in this pass, by name, with its message (the shell decides again). */
  rejected?: Map<string, string>;
  /** Volume sources about to get a Job: their PVCs. */
  claims: Map<string, string[]>;
  settings: AgentSettings;
  now: Date;
}

export interface AuditDecision {
  createJobs: k8s.V1Job[];
  /** New lastAudit per source (the shell writes them onto the fresh status). */
  audits: { source: string; lastAudit: LastAudit }[];
  events: { type: 'Normal' | 'Warning'; reason: AuditEventReason; message: string }[];
  requeueAfterMs?: number;
}

/**
 * The audit due for a source now: the latest slot of `verification.audit` later than the one last
 * audited (`recorded`, else the source's lastAudit), and the name of its Job.
 */
export function dueAudit(
  policy: BackupPolicy,
  source: string,
  now: Date,
  recorded = lastAuditOf(policy.status, source)?.scheduledTime,
): { slot: Date; jobName: string } | undefined {
  const trigger = policy.spec.verification?.audit;
  if (!trigger) return undefined;
  const created = new Date(policy.metadata.creationTimestamp ?? now.toISOString());
  const slot = previousRun(trigger, policy.spec.schedule.timeZone ?? 'UTC', now, created);
  if (!slot || slot < created) return undefined;
  if (recorded && Date.parse(recorded) >= slot.getTime()) return undefined;
  return { slot, jobName: auditJobName(policy, source, slot) };
}

export const lastAuditOf = (status: BackupPolicyStatus | undefined, source: string) =>
  status?.sources?.find((s) => s.name === source)?.lastAudit;

/** The audit Jobs of one source, with the slot each ran for. */
function auditJobsOf(jobs: Map<string, JobObserved>, source: string): { slot: string; job: JobObserved }[] {
  return [...jobs.values()].flatMap((job) => {
    const { labels = {}, annotations = {} } = job.job.metadata ?? {};
    const slot = annotations[AUDIT_SLOT];
    return labels[LABELS.task] === 'audit' && labels[LABELS.source] === labelValue(source) && slot
      ? [{ slot, job }]
      : [];
  });
}

/**
 * Scheduled audits (R-VERIFY), pure: at each slot of `verification.audit`, one Job per source compares
 * the live source with its latest successful Backup; its report becomes the source's lastAudit, with
 * an Event. Audits of a source never overlap: a slot that comes while one runs waits for it, and the
 * latest slot missed meanwhile runs once it ended. A slot is done once a lastAudit names it.
 */
export function decideAudits(observed: AuditObserved): AuditDecision {
  const { policy, now } = observed;
  const decision: AuditDecision = { createJobs: [], audits: [], events: [] };
  const trigger = policy.spec.verification?.audit;
  if (!trigger || policy.metadata.deletionTimestamp) return decision;
  const created = new Date(policy.metadata.creationTimestamp ?? now.toISOString());
  try {
    const next = nextRun(trigger, policy.spec.schedule.timeZone ?? 'UTC', now, created);
    decision.requeueAfterMs = Math.max(1, next.getTime() - now.getTime() + 5);
  } catch {
    return decision; // an invalid trigger: the policy's Ready condition says what is wrong
  }
  for (const source of policy.spec.sources) {
    const previous = lastAuditOf(policy.status, source.name);
    let recorded = previous?.scheduledTime;
    const record = (lastAudit: LastAudit, type: 'Normal' | 'Warning', reason: AuditEventReason, message: string) => {
      decision.audits.push({ source: source.name, lastAudit });
      decision.events.push({ type, reason, message: `source ${source.name}: ${message}` });
      recorded = lastAudit.scheduledTime;
    };
    const failed = (slot: string, message: string) =>
      record(
        {
          ...keptNumbers(previous),
          scheduledTime: slot,
          completionTime: now.toISOString(),
          result: 'Failed',
          message: message.slice(0, 1024),
        },
        'Warning',
        'AuditFailed',
        `audit failed: ${message}`,
      );

    const jobs = auditJobsOf(observed.jobs, source.name);
    const unrecorded = jobs
      .filter(({ slot, job }) => jobOutcome(job.job) && (!recorded || Date.parse(slot) > Date.parse(recorded)))
      .sort((a, b) => Date.parse(b.slot) - Date.parse(a.slot))[0];
    if (unrecorded) {
      const { slot, job } = unrecorded;
      const backup = job.job.metadata?.annotations?.[AUDITED_BACKUP];
      const report = reportOf(job.result as AgentResult<'audit'> | undefined);
      if (jobOutcome(job.job) === 'Failed' || !report)
        failed(slot, job.result?.error?.message ?? `Job ${job.job.metadata?.name} failed without a result`);
      else {
        const lastAudit = fromReport(report, { scheduledTime: slot, completionTime: now.toISOString() }, backup);
        const clean = lastAudit.result === 'Clean';
        record(
          lastAudit,
          clean ? 'Normal' : 'Warning',
          clean ? 'AuditClean' : 'AuditFoundMissing',
          `${summary(report)}, compared with Backup ${backup}`,
        );
      }
    }
    if (jobs.some(({ job }) => !jobOutcome(job.job))) continue;
    const due = dueAudit(policy, source.name, now, recorded);
    if (!due || observed.jobs.has(due.jobName)) continue;
    const slot = due.slot.toISOString();
    const rejected = observed.rejected?.get(due.jobName);
    if (rejected) {
      failed(slot, rejected);
      continue;
    }
    const latest = lastSuccessfulBackup(observed.backups.filter((b) => b.spec.source === source.name));
    if (!latest?.status?.snapshotId) {
      record(
        {
          scheduledTime: slot,
          completionTime: now.toISOString(),
          result: 'NoBackup',
          message: 'no successful backup to compare with yet',
        },
        'Warning',
        'AuditSkipped',
        'audit skipped: no successful backup to compare with yet',
      );
      continue;
    }
    if (!observed.repository) {
      failed(slot, `BackupRepository ${policy.spec.repository} not found`);
      continue;
    }
    decision.createJobs.push(
      auditJob({
        policy,
        source,
        slot: due.slot,
        backup: latest.metadata.name ?? '',
        snapshotId: latest.status.snapshotId,
        repository: observed.repository,
        claims: observed.claims.get(source.name) ?? [],
        settings: observed.settings,
      }),
    );
  }
  return decision;
}

/** The audit's report, when the Job succeeded and reported one whole. */
function reportOf(result: AgentResult<'audit'> | undefined): AuditReport | undefined {
  if (!result?.ok || result.missingObjects === undefined || !result.snapshotId || !result.snapshotTime)
    return undefined;
  const { ok: _, error: __, ...report } = result;
  return report as AuditReport;
}

/** Volume sources whose audit Job is about to be created: the shell lists their PVCs. */
export function sourcesNeedingClaims(policy: BackupPolicy, jobs: Map<string, JobObserved>, now: Date): Source[] {
  return policy.spec.sources.filter((source) => {
    if (!source.volume || auditJobsOf(jobs, source.name).some(({ job }) => !jobOutcome(job.job))) return false;
    const due = dueAudit(policy, source.name, now);
    return due && !jobs.has(due.jobName);
  });
}

/** A failed audit keeps what the last audit that compared found (alerts on missing objects stay up). */
function keptNumbers(previous: LastAudit | undefined): Partial<LastAudit> {
  if (!previous || previous.missingObjects === undefined) return {};
  const { backup, missingObjects, tables, files } = previous;
  return { ...(backup ? { backup } : {}), missingObjects, ...(tables ? { tables } : {}), ...(files ? { files } : {}) };
}

function fromReport(
  report: AuditReport,
  base: Pick<LastAudit, 'scheduledTime' | 'completionTime'>,
  backup: string | undefined,
): LastAudit {
  const { tables, files } = report;
  return {
    ...base,
    result: report.missingObjects > 0 ? 'Missing' : 'Clean',
    ...(backup ? { backup } : {}),
    missingObjects: report.missingObjects,
    ...(tables
      ? {
          tables: {
            compared: tables.compared,
            differing: tables.differences.total,
            differences: tables.differences.items,
          },
        }
      : {}),
    ...(files
      ? {
          files: {
            live: files.live,
            missing: files.missing.items,
            missingTotal: files.missing.total,
            removed: files.removed.items,
            removedTotal: files.removed.total,
            changed: files.changed.items,
            changedTotal: files.changed.total,
          },
        }
      : {}),
  };
}

/** The Event's words: counts first, then the largest differences by name. */
export function summary(report: AuditReport): string {
  if (report.tables) {
    const { differences, compared } = report.tables;
    const missing = differences.items.filter((d) => d.missing > 0);
    if (report.missingObjects === 0)
      return `no rows missing in ${compared} tables${differences.total ? ` (${differences.total} differ otherwise: rows removed or keys moved)` : ''}`;
    return `${report.missingObjects} rows missing in ${missing.length < differences.total ? `${differences.total} differing` : missing.length} of ${compared} tables (${missing.map((d) => `${d.name} ${d.missing}`).join(', ')}${differences.total > differences.items.length ? ', …' : ''})`;
  }
  const files = report.files;
  if (!files) return `${report.missingObjects} objects missing`;
  const listed = files.missing.items.slice(0, 3).join(', ');
  return `${files.missing.total} files not backed up${listed ? ` (${listed}${files.missing.total > 3 ? ', …' : ''})` : ''}, ${files.changed.total} changed, ${files.removed.total} removed since, of ${files.live} live files`;
}
