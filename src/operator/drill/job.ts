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
import { controllerReference } from '../runtime/owner.ts';
import type { DrillTarget, ScratchVolume } from '../runtime/policy-status.ts';

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

/** Marks the scratch PVCs of volume drills (value: the policy's name), for the controller to find and delete them. */
export const SCRATCH_LABEL = 'tidemark.dev/drill-scratch';
/** Where a volume drill's scratch PVC is mounted in its Job. */
const SCRATCH_MOUNT = '/scratch';

/**
 * The scratch PVC of one volume drill, named as its Job, owned by the policy and labelled: the
 * controller deletes it once the Job ended or is gone (also after a killed drill).
 */
export function scratchClaim(options: {
  policy: BackupPolicy;
  source: string;
  name: string;
  scratch: ScratchVolume;
  size: string;
}): k8s.V1PersistentVolumeClaim {
  const { policy } = options;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: options.name,
      namespace: policy.metadata.namespace ?? '',
      labels: {
        'app.kubernetes.io/managed-by': 'tidemark',
        [LABELS.policy]: labelValue(policy.metadata.name ?? ''),
        [LABELS.source]: labelValue(options.source),
        [SCRATCH_LABEL]: labelValue(policy.metadata.name ?? ''),
      },
      annotations: { [DRILL_ANNOTATIONS.source]: options.source },
      ownerReferences: [controllerReference(policy)],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: options.size } },
      ...(options.scratch.storageClassName ? { storageClassName: options.scratch.storageClassName } : {}),
    },
  };
}

/** How the Job reaches where it restores: the drill server's access, or the scratch PVC read-write. */
function targetAccess(target: DrillTarget, claimName: string) {
  if (target.kind === 'volume')
    return {
      url: `file://${SCRATCH_MOUNT}`,
      env: [],
      volumes: [{ name: 'scratch', persistentVolumeClaim: { claimName } }],
      volumeMounts: [{ name: 'scratch', mountPath: SCRATCH_MOUNT }],
    };
  return serverAccess(target.engine, target.server.connectionSecret.name, target.server.tls);
}

/**
 * The Job of one drill (or of the cleanup after a drill that was killed), owned by the policy so it
 * goes with it. It runs once (backoffLimit 0, disruptions not counted): a failed drill is an answer,
 * and the next one comes with the schedule. The policy's database sources travel as live sources:
 * the agent refuses a drill server that is one of their servers. A volume drill mounts only its
 * scratch PVC (scratchClaim), read-write. Pure: same inputs, same Job.
 */
export function drillJob(options: {
  policy: BackupPolicy;
  source: string;
  target: DrillTarget;
  mode: DrillMode;
  name: string;
  settings: AgentSettings;
  /** For a drill: the repository, snapshot and Backup restored, and the schedule slot. */
  restore?: { repository: BackupRepository; snapshotId: string; backup: string; scheduled: Date };
}): k8s.V1Job {
  const { policy, restore } = options;
  // A volume drill's scratch PVC is named as its Job; the source's own PVCs are never mounted.
  const access = targetAccess(options.target, options.name);
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
