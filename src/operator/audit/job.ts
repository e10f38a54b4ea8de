import type * as k8s from '@kubernetes/client-node';
import { audit as auditTask } from '../../agent/tasks/audit.ts';
import type { Source } from '../../api/backuppolicy.ts';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { scheduleStamp } from '../backuppolicy/schedule.ts';
import { sourceAccess } from '../jobs/access.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { LABELS } from '../jobs/labels.ts';
import { ownedJobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';
import { labelValue } from '../runtime/labels.ts';

/** On an audit Job: the Backup whose snapshot it compares the source with, and the slot it runs for. */
export const AUDITED_BACKUP = 'tidemark.dev/audited-backup';
export const AUDIT_SLOT = 'tidemark.dev/scheduled-time';

export interface AuditJobOptions {
  policy: BackupPolicy;
  source: Source;
  /** The schedule slot the audit runs for (part of the Job's name, so a retry adopts it). */
  slot: Date;
  /** The latest successful Backup of the source, and its snapshot in the primary repository. */
  backup: string;
  snapshotId: string;
  repository: BackupRepository;
  /** Volume sources: the PVCs, mounted read-only as a backup mounts them. */
  claims: string[];
  settings: AgentSettings;
}

/** One audit Job per policy, source and slot, named for this policy instance. */
export const auditJobName = (policy: BackupPolicy, source: string, slot: Date) =>
  ownedJobName(policy, `${policy.metadata.name}-${source}-audit-${scheduleStamp(slot)}`);

/** The Job that compares a live source with a snapshot: the source reached as its backup reaches it, read only. */
export function auditJob(input: AuditJobOptions): k8s.V1Job {
  const { policy, source } = input;
  const src = sourceAccess(source, input.claims, undefined, policy.spec.verification?.audit?.timestampColumns);
  const repo = repositoryAccess(input.repository, 'primary');
  const job = agentJob({
    policy,
    task: auditTask.name,
    name: auditJobName(policy, source.name, input.slot),
    owner: policy,
    labels: {
      [LABELS.policy]: labelValue(policy.metadata.name ?? ''),
      [LABELS.source]: labelValue(source.name),
    },
    settings: input.settings,
    env: [...(src.env ?? []), ...repo.env, ...auditTask.jobEnv({ snapshotId: input.snapshotId })],
    envFrom: repo.envFrom,
    volumes: [...src.volumes, ...repo.volumes],
    volumeMounts: [...src.volumeMounts, ...repo.volumeMounts],
  });
  if (job.metadata)
    job.metadata.annotations = {
      ...job.metadata.annotations,
      [AUDITED_BACKUP]: input.backup,
      [AUDIT_SLOT]: input.slot.toISOString(),
    };
  return job;
}
