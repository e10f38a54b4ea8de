import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { type CatalogEntry, catalog as catalogTask } from '../../agent/tasks/catalog.ts';
import { API_GROUP_VERSION } from '../../api/common.ts';
import type { Backup, BackupRepository } from '../../api/kinds.ts';
import { formatBytes } from '../../units.ts';
import { IMPORTED_FROM, SNAPSHOT_FINALIZER } from '../backup/decide.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { LABELS } from '../jobs/labels.ts';
import { jobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';

/** Set (to any new value, e.g. a time) on a BackupRepository to re-import its snapshots as Backups. */
export const SYNC_REQUESTED = 'tidemark.dev/sync-requested';
/** Set by the operator to the sync-requested value it has acted on. */
export const SYNCED = 'tidemark.dev/synced';
/** Label on a catalog Job naming its BackupRepository. */
export const CATALOG_LABEL = 'tidemark.dev/catalog';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface CatalogObserved {
  repository: BackupRepository;
  /** The catalog Job of the pending sync request, if created. */
  job?: JobObserved;
  /** The catalog the Job wrote (read once it completed). */
  catalog?: CatalogEntry[];
  /** Backups of the repository's namespace. */
  backups: Backup[];
  settings: AgentSettings;
}

export interface CatalogDecision {
  createJob?: k8s.V1Job;
  /** Backups to create, each with the status to write once it exists. */
  createBackups: Backup[];
  /** The sync-requested value now handled (written to SYNCED). */
  markSynced?: string;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

/** The pending sync request of a repository: its SYNC_REQUESTED value, unless already handled. */
export function pendingSync(repository: BackupRepository): string | undefined {
  const annotations = repository.metadata.annotations ?? {};
  const requested = annotations[SYNC_REQUESTED];
  return requested && annotations[SYNCED] !== requested ? requested : undefined;
}

export const catalogJobName = (repository: BackupRepository, request: string) =>
  jobName(`${repository.metadata.name}-catalog-${createHash('sha256').update(request).digest('hex').slice(0, 8)}`);

export const catalogConfigMapName = (repository: BackupRepository) => jobName(`${repository.metadata.name}-catalog`);

/**
 * Re-import, pure (as Velero syncs Backups from its storage location): on a sync request, run the
 * agent's `catalog` Job (the operator holds no repository credentials); once it wrote the catalog,
 * create a Succeeded Backup for every snapshot of this namespace that no Backup names, marked
 * IMPORTED_FROM, so `kubectl get backups` and a re-created policy see the history again.
 */
export function decideCatalog(observed: CatalogObserved): CatalogDecision {
  const { repository } = observed;
  const decision: CatalogDecision = { createBackups: [], events: [] };
  const request = pendingSync(repository);
  if (!request || repository.metadata.deletionTimestamp) return decision;
  const name = catalogJobName(repository, request);
  if (!observed.job) {
    decision.createJob = catalogJob(repository, name, observed.settings);
    return decision;
  }
  const outcome = jobOutcome(observed.job.job);
  if (!outcome) return decision;
  decision.markSynced = request;
  if (outcome === 'Failed' || !observed.job.result?.ok || !observed.catalog) {
    const why = observed.job.result?.error?.message ?? `Job ${name} failed without a catalog`;
    decision.events.push({ type: 'Warning', reason: 'SyncFailed', message: `could not list the snapshots: ${why}` });
    return decision;
  }
  decision.createBackups = importedBackups(repository, observed.catalog, observed.backups);
  const skipped = observed.catalog.length - decision.createBackups.length;
  decision.events.push({
    type: 'Normal',
    reason: 'BackupsImported',
    message: `re-imported ${decision.createBackups.length} Backups from ${observed.catalog.length} snapshots of namespace ${repository.metadata.namespace}${skipped ? ` (${skipped} already named by a Backup or not made by a policy)` : ''}`,
  });
  return decision;
}

const SNAPSHOT_ID = /^[0-9a-f]{8,128}$/;

/**
 * The catalog ConfigMap's text as entries. Any pod running as the agent ServiceAccount (so anyone
 * who can create pods in the namespace) can write that ConfigMap: its content is untrusted data.
 * It grants nothing (imported Backups still need approval to restore, and only name snapshots of
 * this namespace), and entries of the wrong shape are dropped here rather than trusted by a cast.
 */
export function parseCatalog(text: string): CatalogEntry[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error('the catalog ConfigMap does not hold a list of snapshots');
  const count = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  const str = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;
  return parsed.flatMap((e: unknown): CatalogEntry[] => {
    if (typeof e !== 'object' || e === null) return [];
    const x = e as Record<string, unknown>;
    const valid =
      typeof x.id === 'string' &&
      SNAPSHOT_ID.test(x.id) &&
      str(x.source, 512) &&
      str(x.time, 64) &&
      !Number.isNaN(Date.parse(x.time as string)) &&
      (x.type === 'full' || x.type === 'incremental') &&
      str(x.chainId, 128) &&
      count(x.logicalBytes) &&
      count(x.durationMs);
    if (!valid) return [];
    const objects = Array.isArray(x.objects)
      ? x.objects.filter(
          (o): o is { name: string; records: number } =>
            typeof o === 'object' && o !== null && str(o.name, 253) && count(o.records),
        )
      : undefined;
    return [
      {
        id: x.id as string,
        source: x.source as string,
        time: x.time as string,
        type: x.type as CatalogEntry['type'],
        chainId: x.chainId as string,
        logicalBytes: x.logicalBytes as number,
        durationMs: x.durationMs as number,
        ...(objects ? { objects: objects.map((o) => ({ name: o.name, records: o.records })) } : {}),
      },
    ];
  });
}

/** The Backups to create for the catalog's snapshots that no Backup names, oldest first. */
export function importedBackups(repository: BackupRepository, catalog: CatalogEntry[], backups: Backup[]): Backup[] {
  const named = new Set(
    backups.flatMap((b) => [b.status?.snapshotId, ...(b.status?.repositories ?? []).map((r) => r.snapshotId)]),
  );
  const namespace = repository.metadata.namespace ?? '';
  return catalog
    .filter((entry) => !named.has(entry.id))
    .flatMap((entry) => {
      const [ns, policy, source, ...rest] = entry.source.split('/');
      // Only what a policy of this namespace made (TIDEMARK_SOURCE_NAME): CLI snapshots name a URL.
      if (ns !== namespace || !policy || !source || rest.length) return [];
      if (!DNS_SUBDOMAIN.test(policy) || !DNS_LABEL.test(source) || source.length > 40) return [];
      return [importedBackup(repository, entry, policy, source)];
    })
    .sort((a, b) => (a.status?.startTime ?? '').localeCompare(b.status?.startTime ?? ''));
}

function importedBackup(repository: BackupRepository, entry: CatalogEntry, policy: string, source: string): Backup {
  const tail = `-${entry.id.slice(0, 12)}`;
  const name = `${`${policy}-${source}`.slice(0, 253 - tail.length).replace(/[-.]+$/, '')}${tail}`;
  const completion = new Date(Date.parse(entry.time) + entry.durationMs).toISOString();
  const repositoryName = repository.metadata.name ?? '';
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'Backup',
    metadata: {
      name,
      namespace: repository.metadata.namespace ?? '',
      labels: Object.fromEntries(
        [
          [LABELS.policy, policy],
          [LABELS.source, source],
        ].filter(([, v]) => (v ?? '').length <= 63 && LABEL_VALUE.test(v ?? '')),
      ),
      annotations: { [IMPORTED_FROM]: repositoryName },
      // As every Succeeded Backup: whatever deletion of a Backup means, it means it for these too.
      finalizers: [SNAPSHOT_FINALIZER],
    },
    spec: { policy, source, type: entry.type },
    status: {
      phase: 'Succeeded',
      startTime: new Date(entry.time).toISOString(),
      completionTime: completion,
      snapshotId: entry.id,
      chainId: entry.chainId,
      logicalBytes: entry.logicalBytes,
      size: formatBytes(entry.logicalBytes),
      objects: entry.objects ?? [],
      repositories: [
        {
          repository: repositoryName,
          role: 'primary',
          state: 'Succeeded',
          snapshotId: entry.id,
          completionTime: completion,
        },
      ],
      conditions: [
        {
          type: 'Succeeded',
          status: 'True',
          reason: 'Imported',
          message: `re-imported from repository ${repositoryName}: snapshot ${entry.id.slice(0, 12)} of ${entry.source}`,
          lastTransitionTime: completion,
        },
      ],
    },
  };
}

function catalogJob(repository: BackupRepository, name: string, settings: AgentSettings): k8s.V1Job {
  const access = repositoryAccess(repository, 'primary');
  const namespace = repository.metadata.namespace ?? '';
  const owner: k8s.V1OwnerReference = {
    apiVersion: repository.apiVersion,
    kind: repository.kind,
    name: repository.metadata.name ?? '',
    uid: repository.metadata.uid ?? '',
  };
  const job = agentJob({
    policy: undefined,
    task: catalogTask.name,
    name,
    owner: repository,
    labels: { [CATALOG_LABEL]: repository.metadata.name ?? '' },
    settings,
    env: [
      ...access.env,
      ...catalogTask.jobEnv({ prefix: `${namespace}/`, configMap: catalogConfigMapName(repository), owner, namespace }),
    ],
    envFrom: access.envFrom,
    volumes: access.volumes,
    volumeMounts: access.volumeMounts,
    // It writes the catalog ConfigMap: the one agent task with a token.
    kubernetesApi: true,
  });
  if (job.spec) {
    job.spec.backoffLimit = 1;
    job.spec.ttlSecondsAfterFinished = 3600;
  }
  return job;
}
