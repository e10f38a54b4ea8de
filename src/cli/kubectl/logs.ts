import * as k8s from '@kubernetes/client-node';
import type { Backup, RestoreRequest } from '../../api/kinds.ts';
import { TidemarkError } from '../../errors.ts';
import type { Connection } from './connection.ts';

/** The Jobs that ran for a Backup (its run, then each replica copy) or a RestoreRequest. */
async function agentJobs(connection: Connection, kind: string, name: string): Promise<string[]> {
  if (kind === 'backup' || kind === 'backups') {
    const backup = await connection.get<Backup>('Backup', name);
    return [backup.status?.jobName, ...(backup.status?.repositories ?? []).map((r) => r.jobName)].filter(
      (j): j is string => j !== undefined,
    );
  }
  if (kind === 'restore' || kind === 'restorerequest' || kind === 'restorerequests') {
    const request = await connection.get<RestoreRequest>('RestoreRequest', name);
    return request.status?.jobName ? [request.status.jobName] : [];
  }
  throw new TidemarkError('InvalidArgument', `logs of ${kind}: use backup or restore`);
}

/** Every container log of every pod of those Jobs, each under a `==> pod/container <==` line. */
export async function agentLogs(connection: Connection, kind: string, name: string): Promise<string> {
  const jobs = [...new Set(await agentJobs(connection, kind, name))];
  const core = connection.kc.makeApiClient(k8s.CoreV1Api);
  const namespace = connection.namespace;
  const parts: string[] = [];
  for (const job of jobs) {
    const pods = await connection.call(`listing the pods of Job ${namespace}/${job}`, () =>
      core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` }),
    );
    const ordered = pods.items.sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')),
    );
    for (const pod of ordered)
      for (const container of pod.spec?.containers ?? []) {
        const podName = pod.metadata?.name ?? '';
        const text = await connection.call(`reading the log of pod ${namespace}/${podName}`, () =>
          core.readNamespacedPodLog({ namespace, name: podName, container: container.name }),
        );
        parts.push(`==> ${podName}/${container.name} <==\n${text}${text.endsWith('\n') || !text ? '' : '\n'}`);
      }
  }
  if (parts.length === 0)
    throw new TidemarkError(
      'NotFound',
      `${kind} ${namespace}/${name} has no agent pod: it has not started yet, or its Jobs were removed`,
    );
  return parts.join('');
}
