import type * as k8s from '@kubernetes/client-node';
import { drill as drillTask } from '../../agent/tasks/drill.ts';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { scheduleStamp } from '../backuppolicy/schedule.ts';
import { liveSourceEnv, serverAccess } from '../jobs/access.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { LABELS } from '../jobs/labels.ts';
import { jobName, ownedJobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';
import { labelValue } from '../runtime/labels.ts';
import type { DrillEngine, DrillServer } from '../runtime/policy-status.ts';

/** What a drill Job is for: read back by the controller from the Job it created. */
export const DRILL_ANNOTATIONS = {
  source: 'tidemark.dev/drill-source',
  backup: 'tidemark.dev/drill-backup',
  scheduled: 'tidemark.dev/drill-scheduled',
} as const;

/** `drill` restores and checks; `cleanup` only drops what a killed drill left on the server. */
export const DRILL_MODE_LABEL = 'tidemark.dev/drill-mode';
export type DrillMode = 'drill' | 'cleanup';

export const drillJobName = (policy: BackupPolicy, source: string, scheduled: Date) =>
  ownedJobName(policy, `${policy.metadata.name}-${source}-drill-${scheduleStamp(scheduled)}`);
export const cleanupJobName = (drillJob: string) => jobName(`${drillJob}-cleanup`);

/**
 * The Job of one drill (or of the cleanup after a drill that was killed), owned by the policy so it
 * goes with it. It runs once (backoffLimit 0, disruptions not counted): a failed drill is an answer,
 * and the next one comes with the schedule. The policy's database sources travel as live sources:
 * the agent refuses a drill server that is one of their servers. Pure: same inputs, same Job.
 */
export function drillJob(options: {
  policy: BackupPolicy;
  source: string;
  engine: DrillEngine;
  server: DrillServer;
  mode: DrillMode;
  name: string;
  settings: AgentSettings;
  /** For a drill: the repository, snapshot and Backup restored, and the schedule slot. */
  restore?: { repository: BackupRepository; snapshotId: string; backup: string; scheduled: Date };
}): k8s.V1Job {
  const { policy, restore } = options;
  const access = serverAccess(options.engine, options.server.connectionSecret.name, options.server.tls);
  const repo = restore ? repositoryAccess(restore.repository, 'primary') : undefined;
  const liveSources = policy.spec.sources.flatMap((s) => {
    const database = s.postgres ?? s.mysql;
    return database
      ? [
          {
            name: `source ${s.name} of policy ${policy.metadata.name}`,
            connectionSecret: database.connectionSecret.name,
          },
        ]
      : [];
  });
  const job = agentJob({
    policy,
    task: 'drill',
    name: options.name,
    settings: options.settings,
    owner: policy,
    labels: {
      [LABELS.policy]: labelValue(policy.metadata.name ?? ''),
      [LABELS.source]: labelValue(options.source),
      ...(restore ? { [LABELS.backup]: labelValue(restore.backup) } : {}),
      [DRILL_MODE_LABEL]: options.mode,
    },
    env: [
      ...access.env,
      ...drillTask.jobEnv(
        restore
          ? { server: access.url, mode: 'drill', snapshotId: restore.snapshotId }
          : { server: access.url, mode: 'cleanup' },
      ),
      ...(repo?.env ?? []),
      ...liveSourceEnv(liveSources),
    ],
    envFrom: repo?.envFrom ?? [],
    volumes: [...access.volumes, ...(repo?.volumes ?? [])],
    volumeMounts: [...access.volumeMounts, ...(repo?.volumeMounts ?? [])],
  });
  if (job.metadata)
    job.metadata.annotations = {
      ...job.metadata.annotations,
      [DRILL_ANNOTATIONS.source]: options.source,
      ...(restore
        ? { [DRILL_ANNOTATIONS.backup]: restore.backup, [DRILL_ANNOTATIONS.scheduled]: restore.scheduled.toISOString() }
        : {}),
    };
  if (job.spec) {
    job.spec.backoffLimit = 0;
    job.spec.podFailurePolicy = {
      rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }],
    };
  }
  return job;
}
