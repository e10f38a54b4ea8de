import * as k8s from '@kubernetes/client-node';
import { DEFAULT_EXPORT_EXPIRY } from '../../api/backupexport.ts';
import { API_GROUP_VERSION } from '../../api/common.ts';
import { parseDuration } from '../../api/duration.ts';
import type { Backup, BackupExport } from '../../api/kinds.ts';
import { TidemarkError } from '../../errors.ts';
import type { Connection } from './connection.ts';

/** The BackupExport `kubectl tidemark export` creates (a generated name, so exports of one Backup never clash). */
export function exportRequest(namespace: string, backup: string, expiresAfter = DEFAULT_EXPORT_EXPIRY): BackupExport {
  try {
    parseDuration(expiresAfter);
  } catch (error) {
    throw new TidemarkError('InvalidArgument', `--expires-after ${expiresAfter}: ${(error as Error).message}`);
  }
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'BackupExport',
    metadata: { generateName: `${backup.slice(0, 40)}-export-`, namespace } as BackupExport['metadata'],
    spec: { backup, expiresAfter },
  };
}

/** What the command prints: the link (from the export's Secret), or the ZIP's path for a filesystem repository. */
export interface ExportHandout {
  exp: BackupExport;
  link?: string;
}

/**
 * Creates the export of `backup`, waits until it is Ready (or fails, naming why), and reads its link
 * from the export's Secret: the link is nowhere else.
 */
export async function exportBackup(
  connection: Connection,
  backup: string,
  expiresAfter: string | undefined,
  timeoutMs: number,
): Promise<ExportHandout> {
  const request = exportRequest(connection.namespace, backup, expiresAfter);
  await connection.get<Backup>('Backup', backup); // a typo fails now, not after a wait
  const created = await connection.create<BackupExport>('BackupExport', request);
  const name = created.metadata.name ?? '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exp = await connection.get<BackupExport>('BackupExport', name);
    const phase = exp.status?.phase;
    if (phase === 'Ready') {
      const secretName = exp.status?.secretName;
      if (!secretName) return { exp };
      const core = connection.kc.makeApiClient(k8s.CoreV1Api);
      const secret = await connection.call(`reading Secret ${connection.namespace}/${secretName} (the link)`, () =>
        core.readNamespacedSecret({ name: secretName, namespace: connection.namespace }),
      );
      return { exp, link: Buffer.from(secret.data?.url ?? '', 'base64').toString('utf8') };
    }
    if (phase === 'Failed' || phase === 'Expired')
      throw new TidemarkError('Internal', `BackupExport ${name} ${phase}: ${exp.status?.error ?? ''}`);
    if (Date.now() > deadline)
      throw new TidemarkError(
        'Transient',
        `BackupExport ${name} is not ready after ${Math.round(timeoutMs / 1000)} s (phase ${phase ?? 'none'}: ${exp.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? ''}); it goes on: kubectl get backupexport ${name}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
