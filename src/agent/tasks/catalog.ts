import * as k8s from '@kubernetes/client-node';
import { TidemarkError } from '../../errors.ts';
import { log } from '../../log.ts';
import type { Repository } from '../../repository/repository.ts';
import { required } from './env.ts';
import { inClusterConfig, SERVICE_ACCOUNT_DIR, SERVICE_ACCOUNT_DIR_ENV } from './kubernetes-api.ts';
import type { AgentTask } from './task.ts';

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
 * `catalog`: lists the repository's snapshots whose source identity starts with the prefix
 * (`<namespace>/`) and writes them to a ConfigMap of the namespace, owned as the operator says (an
 * ownerReference as JSON). A termination message holds 4096 bytes, a few dozen snapshots; the
 * ConfigMap holds thousands. The agent reaches the API server with its pod's ServiceAccount token (the
 * one task with one). Fails Unsupported (too many to fit), Transient (the API server), or a storage code.
 */
const ENV = {
  prefix: 'TIDEMARK_CATALOG_PREFIX',
  configMap: 'TIDEMARK_CATALOG_CONFIGMAP',
  owner: 'TIDEMARK_CATALOG_OWNER',
  namespace: 'TIDEMARK_NAMESPACE',
  serviceAccountDir: SERVICE_ACCOUNT_DIR_ENV,
} as const;

export interface CatalogInput {
  prefix: string;
  configMap: string;
  namespace: string;
  owner?: k8s.V1OwnerReference;
}

export interface CatalogResult {
  /** How many snapshots were written to the ConfigMap. */
  snapshots: number;
}

export const catalog: AgentTask<'catalog', CatalogInput, CatalogResult, Required<CatalogInput>> = {
  name: 'catalog',
  deadlineSeconds: 30 * 60,
  jobEnv: (job) => [
    { name: ENV.prefix, value: job.prefix },
    { name: ENV.configMap, value: job.configMap },
    { name: ENV.owner, value: JSON.stringify(job.owner) },
    { name: ENV.namespace, value: job.namespace },
    { name: ENV.serviceAccountDir, value: SERVICE_ACCOUNT_DIR },
  ],
  input: (env) => {
    const owner = env[ENV.owner];
    return {
      prefix: env[ENV.prefix] ?? '',
      configMap: required(env, ENV.configMap),
      namespace: required(env, ENV.namespace),
      ...(owner ? { owner: JSON.parse(owner) as k8s.V1OwnerReference } : {}),
    };
  },
  run: async (input, { env, repository }) => writeCatalog(await repository(), input, env),
};

async function writeCatalog(
  repository: Repository,
  input: CatalogInput,
  env: NodeJS.ProcessEnv,
): Promise<CatalogResult> {
  const { prefix, namespace, configMap: name } = input;
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
  const body: k8s.V1ConfigMap = {
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'tidemark' },
      ownerReferences: input.owner ? [input.owner] : [],
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
  return { snapshots: entries.length };
}
