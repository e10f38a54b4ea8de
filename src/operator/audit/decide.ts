import type * as k8s from '@kubernetes/client-node';
import type { AuditReport } from '../../agent/tasks/audit.ts';
import type { BackupPolicyStatus, LastAudit, Source } from '../../api/backuppolicy.ts';
import type { Backup, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { type JobObserved, jobOutcome } from '../backup/decide.ts';
import type { AgentSettings } from '../backup/job.ts';
import { lastSuccessfulBackup } from '../backuppolicy/rpo.ts';
import { nextRun, previousRun } from '../backuppolicy/schedule.ts';
import { AUDITED_BACKUP, auditJob, auditJobName } from './job.ts';

export const AUDIT_EVENT_REASONS = ['AuditClean', 'AuditFoundMissing', 'AuditFailed', 'AuditSkipped'] as const;
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

/** The audit due for a source now: the latest slot of `verification.audit` not yet audited. */
export function dueAudit(policy: BackupPolicy, source: string, now: Date): { slot: Date; jobName: string } | undefined {
  const trigger = policy.spec.verification?.audit;
  if (!trigger) return undefined;
  const created = new Date(policy.metadata.creationTimestamp ?? now.toISOString());
  const slot = previousRun(trigger, policy.spec.schedule.timeZone ?? 'UTC', now, created);
  if (!slot || slot < created) return undefined;
  const last = lastAuditOf(policy.status, source);
  if (last && Date.parse(last.scheduledTime) >= slot.getTime()) return undefined;
  return { slot, jobName: auditJobName(policy, source, slot) };
}

export const lastAuditOf = (status: BackupPolicyStatus | undefined, source: string) =>
  status?.sources?.find((s) => s.name === source)?.lastAudit;

/**
 * Scheduled audits (R-VERIFY), pure: at each slot of `verification.audit`, one Job per source compares
 * the live source with its latest successful Backup; its report becomes the source's lastAudit, with
 * an Event. A slot is done once a lastAudit names it; a later slot starts the next audit. Only the
 * latest missed slot runs.
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
    const due = dueAudit(policy, source.name, now);
    if (!due) continue;
    const record = (lastAudit: LastAudit, type: 'Normal' | 'Warning', reason: AuditEventReason, message: string) => {
      decision.audits.push({ source: source.name, lastAudit });
      decision.events.push({ type, reason, message: `source ${source.name}: ${message}` });
    };
    const base = { scheduledTime: due.slot.toISOString(), completionTime: now.toISOString() };
    const previous = lastAuditOf(policy.status, source.name);
    const failed = (message: string) =>
      record(
        { ...keptNumbers(previous), ...base, result: 'Failed', message: message.slice(0, 1024) },
        'Warning',
        'AuditFailed',
        `audit failed: ${message}`,
      );
    const job = observed.jobs.get(due.jobName);
    const rejected = observed.rejected?.get(due.jobName);
    if (rejected) {
      failed(rejected);
      continue;
    }
    if (job) {
      const outcome = jobOutcome(job.job);
      if (!outcome) continue;
      const backup = job.job.metadata?.annotations?.[AUDITED_BACKUP];
      const report = job.result?.audit;
      if (outcome === 'Failed' || !job.result?.ok || !report)
        failed(job.result?.error?.message ?? `Job ${due.jobName} failed without a result`);
      else {
        const lastAudit = fromReport(report, base, backup);
        const clean = lastAudit.result === 'Clean';
        record(
          lastAudit,
          clean ? 'Normal' : 'Warning',
          clean ? 'AuditClean' : 'AuditFoundMissing',
          `${summary(report)}, compared with Backup ${backup}`,
        );
      }
      continue;
    }
    const latest = lastSuccessfulBackup(observed.backups.filter((b) => b.spec.source === source.name));
    if (!latest?.status?.snapshotId) {
      record(
        { ...base, result: 'NoBackup', message: 'no successful backup to compare with yet' },
        'Warning',
        'AuditSkipped',
        'audit skipped: no successful backup to compare with yet',
      );
      continue;
    }
    if (!observed.repository) {
      failed(`BackupRepository ${policy.spec.repository} not found`);
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

/** Volume sources whose audit Job is about to be created: the shell lists their PVCs. */
export function sourcesNeedingClaims(policy: BackupPolicy, jobs: Map<string, JobObserved>, now: Date): Source[] {
  return policy.spec.sources.filter((source) => {
    const due = source.volume && dueAudit(policy, source.name, now);
    return due && !jobs.has(due.jobName);
  });
}

/** A failed audit keeps what the last audit that compared found (alerts on missing objects stay up). */
function keptNumbers(previous: LastAudit | undefined): Partial<LastAudit> {
  if (!previous || previous.missingObjects === undefined) return {};
  const { backup, missingObjects, tables, files } = previous;
  return { ...(backup ? { backup } : {}), missingObjects, ...(tables ? { tables } : {}), ...(files ? { files } : {}) };
}

export function fromReport(
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
