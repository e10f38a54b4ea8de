import type * as k8s from '@kubernetes/client-node';
import { RESULT_FILE_ENV } from '../../agent/tasks/env.ts';
import type { AgentTaskName } from '../../agent/tasks/names.ts';
import { TASKS } from '../../agent/tasks/registry.ts';
import type { Backup, BackupPolicy } from '../../api/kinds.ts';
import { labelValue } from '../runtime/labels.ts';
import { objectLogFields } from '../runtime/log-fields.ts';
import { controllerReference, type Owner } from '../runtime/owner.ts';
import { LABELS, OWNER_ANNOTATIONS } from './labels.ts';

export interface AgentSettings {
  image: string;
  serviceAccountName: string;
  /**
   * How long an agent pod may wait unable to start (missing Secret or key, image not pullable) before
   * its Job is failed and deleted (`--pod-start-timeout`); default POD_START_TIMEOUT_MS.
   */
  podStartTimeoutMs?: number;
  /** TIDEMARK_RETRY_BUDGET of every agent (`--storage-retry-budget`, a duration); unset: the agent's default. */
  retryBudget?: string;
}

export const POD_START_TIMEOUT_MS = 2 * 60_000;

/**
 * The Job of one agent task, for a Backup or another owner: pod security "restricted", credentials only from Secrets
 * (secretKeyRef / envFrom), owned by the Backup so it goes with it. Pure: same inputs, same Job.
 */
export function agentJob(options: {
  /** The Backup the Job works for; absent for a repository probe (then `owner` and `labels` are given). */
  backup?: Backup;
  policy: BackupPolicy | undefined;
  task: AgentTaskName;
  name: string;
  /** For a Job run for another object (a RestoreRequest, a BackupRepository): its owner, and labels instead of the Backup's. */
  owner?: Owner;
  labels?: Record<string, string>;
  settings: AgentSettings;
  env: k8s.V1EnvVar[];
  envFrom: k8s.V1EnvFromSource[];
  volumes: k8s.V1Volume[];
  volumeMounts: k8s.V1VolumeMount[];
  /** Mount the ServiceAccount token: only for a task that calls the Kubernetes API (catalog, export). */
  kubernetesApi?: boolean;
}): k8s.V1Job {
  const { backup, policy, settings } = options;
  const owner = options.owner ?? backup;
  if (!owner) throw new Error(`agent Job ${options.name} needs a Backup or an owner`);
  const template = policy?.spec.jobTemplate ?? {};
  const labels = {
    'app.kubernetes.io/name': 'tidemark-agent',
    'app.kubernetes.io/managed-by': 'tidemark',
    ...(options.labels ??
      (backup
        ? {
            [LABELS.backup]: labelValue(backup.metadata.name ?? ''),
            [LABELS.policy]: labelValue(backup.spec.policy),
            [LABELS.source]: labelValue(backup.spec.source),
          }
        : {})),
    [LABELS.task]: options.task,
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: options.name,
      namespace: owner.metadata.namespace ?? '',
      labels,
      annotations: {
        [OWNER_ANNOTATIONS.kind]: owner.kind,
        [OWNER_ANNOTATIONS.name]: owner.metadata.name ?? '',
        [OWNER_ANNOTATIONS.uid]: owner.metadata.uid ?? '',
      },
      ownerReferences: [controllerReference(owner)],
    },
    spec: {
      backoffLimit: template.backoffLimit ?? 2,
      activeDeadlineSeconds: template.activeDeadlineSeconds || TASKS[options.task].deadlineSeconds,
      ttlSecondsAfterFinished: 24 * 3600,
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: settings.serviceAccountName,
          automountServiceAccountToken: options.kubernetesApi === true,
          restartPolicy: 'Never',
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(template.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
          ...(template.tolerations ? { tolerations: template.tolerations as k8s.V1Toleration[] } : {}),
          containers: [
            {
              name: 'agent',
              image: settings.image,
              args: ['agent', options.task],
              env: [
                { name: RESULT_FILE_ENV, value: '/dev/termination-log' },
                // Every agent log line then names what it works for (src/log.ts), as operator lines do.
                {
                  name: 'TIDEMARK_LOG_FIELDS',
                  value: JSON.stringify({ ...objectLogFields(owner), ...(backup ? objectLogFields(backup) : {}) }),
                },
                ...(settings.retryBudget ? [{ name: 'TIDEMARK_RETRY_BUDGET', value: settings.retryBudget }] : []),
                ...options.env,
              ],
              envFrom: options.envFrom,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...options.volumeMounts],
              terminationMessagePolicy: 'FallbackToLogsOnError',
              ...(template.resources ? { resources: template.resources as k8s.V1ResourceRequirements } : {}),
              securityContext: {
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }, ...options.volumes],
        },
      },
    },
  };
}
