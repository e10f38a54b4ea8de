import type * as k8s from '@kubernetes/client-node';
import { type ExportInput, exportTask } from '../../agent/tasks/export.ts';
import type { BackupExport, BackupPolicy, BackupRepository } from '../../api/kinds.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { ownedJobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';
import { labelValue } from '../runtime/labels.ts';

/** Label on an export's Jobs naming the BackupExport. */
export const EXPORT_LABEL = 'tidemark.dev/export';

export const exportJobName = (exp: BackupExport, action: ExportInput['action']) =>
  ownedJobName(exp, `${exp.metadata.name}-export${action === 'delete' ? '-delete' : ''}`);

/** Where the ZIP goes: outside the repository format, unique to this export instance. */
export const exportObjectKey = (exp: BackupExport) =>
  `exports/${exp.metadata.namespace}/${exp.metadata.name}-${exp.metadata.uid}.zip`;

/** The Secret holding the link (created by the agent, owned by the export). */
export const exportSecretName = (exp: BackupExport) => `${exp.metadata.name}-export-link`.slice(0, 253);

/**
 * The Job of an export's `export` task: written once (backoffLimit 0: a failed export is the user's to
 * create again, and the Secret it creates must not exist twice), with the ServiceAccount token for the
 * Secret when it writes. A delete Job has no owner reference: it must outlive an export being deleted.
 */
export function exportJob(options: {
  exp: BackupExport;
  policy: BackupPolicy | undefined;
  repository: BackupRepository;
  input: ExportInput;
  settings: AgentSettings;
}): k8s.V1Job {
  const { exp, input } = options;
  const repo = repositoryAccess(options.repository, 'primary');
  const job = agentJob({
    policy: options.policy,
    task: 'export',
    name: exportJobName(exp, input.action),
    settings: options.settings,
    owner: exp,
    labels: { [EXPORT_LABEL]: labelValue(exp.metadata.name ?? '') },
    env: [...repo.env, ...exportTask.jobEnv(input)],
    envFrom: repo.envFrom,
    volumes: repo.volumes,
    volumeMounts: repo.volumeMounts,
    kubernetesApi: input.action === 'write',
  });
  if (job.spec) job.spec.backoffLimit = 0;
  if (input.action === 'delete') delete job.metadata?.ownerReferences;
  return job;
}
