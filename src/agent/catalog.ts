import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { TidemarkError } from '../errors.ts';
import { log } from '../log.ts';
import type { Repository } from '../repository/repository.ts';
import type { AgentResult } from './result.ts';

/** The ConfigMap key holding the catalog (JSON array of CatalogEntry, newest first). */
export const CATALOG_KEY = 'catalog.json';
/** A ConfigMap holds at most 1 MiB; record counts are dropped before the catalog would not fit. */
const CATALOG_LIMIT = 900 * 1024;

/** One snapshot as the operator needs it to re-create its Backup object. */
export interface CatalogEntry {
  id: string;
  source: string;
  time: string;
  type: 'full' | 'incremental';
  chainId: string;
  logicalBytes: number;
  durationMs: number;
  objects?: { name: string; records: number }[];
}

/**
 * The `catalog` task: lists the repository's snapshots whose source identity starts with
 * TIDEMARK_CATALOG_PREFIX (`<namespace>/`) and writes them to the ConfigMap
 * TIDEMARK_CATALOG_CONFIGMAP in TIDEMARK_NAMESPACE, owned by TIDEMARK_CATALOG_OWNER (an
 * ownerReference as JSON). A termination message holds 4096 bytes, a few dozen snapshots; the
 * ConfigMap holds thousands. The agent reaches the API server with its pod's ServiceAccount token.
 */
export async function writeCatalog(repository: Repository, env: NodeJS.ProcessEnv): Promise<AgentResult> {
  const prefix = env.TIDEMARK_CATALOG_PREFIX ?? '';
  const { snapshots, damaged } = await repository.snapshotListing();
  for (const d of damaged)
    log.warn(
      { event: 'snapshot-unreadable', object: d.name, err: d.reason },
      'a snapshot cannot be read: not in the catalog',
    );
  const entries: CatalogEntry[] = snapshots
    .filter((s) => s.source.startsWith(prefix))
    .map((s) => ({
      id: s.id,
      source: s.source,
      time: s.time,
      type: s.type,
      chainId: s.chainId,
      logicalBytes: s.summary.logicalBytes,
      durationMs: s.summary.durationMs,
      ...(s.objects ? { objects: s.objects.map(({ name, records }) => ({ name, records })) } : {}),
    }));
  let text = JSON.stringify(entries);
  if (Buffer.byteLength(text) > CATALOG_LIMIT) text = JSON.stringify(entries.map(({ objects: _, ...e }) => e));
  if (Buffer.byteLength(text) > CATALOG_LIMIT)
    throw new TidemarkError(
      'Unsupported',
      `the catalog of ${entries.length} snapshots under ${prefix} does not fit in one ConfigMap`,
    );
  const namespace = need(env, 'TIDEMARK_NAMESPACE');
  const name = need(env, 'TIDEMARK_CATALOG_CONFIGMAP');
  const owner = env.TIDEMARK_CATALOG_OWNER ? [JSON.parse(env.TIDEMARK_CATALOG_OWNER) as k8s.V1OwnerReference] : [];
  const body: k8s.V1ConfigMap = {
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'tidemark' },
      ownerReferences: owner,
    },
    data: { [CATALOG_KEY]: text },
  };
  const core = inClusterConfig(env).makeApiClient(k8s.CoreV1Api);
  try {
    await core.replaceNamespacedConfigMap({ name, namespace, body });
  } catch (error) {
    if ((error as { code?: number }).code !== 404)
      throw new TidemarkError('Transient', `writing ConfigMap ${namespace}/${name}: ${(error as Error).message}`);
    await core.createNamespacedConfigMap({ namespace, body });
  }
  return { ok: true, snapshots: entries.length };
}

function need(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new TidemarkError('InvalidArgument', `${name} is not set`);
  return value;
}

/**
 * The pod's own API access. The token directory comes from TIDEMARK_SERVICE_ACCOUNT_DIR (a mount
 * path, so it follows the pod's volume) rather than the fixed path loadFromCluster reads.
 */
function inClusterConfig(env: NodeJS.ProcessEnv): k8s.KubeConfig {
  const dir = env.TIDEMARK_SERVICE_ACCOUNT_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount';
  const host = need(env, 'KUBERNETES_SERVICE_HOST');
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'in-cluster',
        server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
        caFile: `${dir}/ca.crt`,
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'agent', token: readFileSync(`${dir}/token`, 'utf8').trim() }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'agent' }],
    currentContext: 'in-cluster',
  });
  return kc;
}
