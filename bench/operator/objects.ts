// The objects the operator benchmark creates: namespaces, one BackupRepository each, quiet BackupPolicies
// (nothing due during the run) and the merge patch that turns some of them into every-minute policies.
import * as k8s from '@kubernetes/client-node';

export const GROUP = 'tidemark.dev';
export const VERSION = 'v1alpha1';
const API_VERSION = `${GROUP}/${VERSION}`;

export interface Layout {
  namespaces: string[];
  /** Policy names per namespace (the same names in every namespace). */
  policiesPerNamespace: number;
}

export const namespaceName = (i: number) => `bench-${String(i).padStart(2, '0')}`;
export const policyName = (i: number) => `policy-${String(i).padStart(4, '0')}`;

export function layout(policies: number, namespaces: number): Layout {
  if (policies % namespaces !== 0) throw new Error(`--policies ${policies} must be a multiple of --namespaces`);
  return {
    namespaces: Array.from({ length: namespaces }, (_, i) => namespaceName(i)),
    policiesPerNamespace: policies / namespaces,
  };
}

/** Every policy as namespace/name, namespace by namespace. */
export function allPolicies(l: Layout): { namespace: string; name: string }[] {
  return l.namespaces.flatMap((namespace) =>
    Array.from({ length: l.policiesPerNamespace }, (_, i) => ({ namespace, name: policyName(i) })),
  );
}

/** The repositories of every namespace: the policies' primary and their replica. */
export const REPOSITORIES = ['primary', 'replica'] as const;

function repository(namespace: string, name: string) {
  return {
    apiVersion: API_VERSION,
    kind: 'BackupRepository',
    metadata: { name, namespace },
    spec: {
      provider: 's3',
      s3: { bucket: 'backups', endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
      prefix: `${namespace}/${name}`,
      region: 'eu-central-1',
      credentialsSecret: { name: 's3-credentials' },
      encryptionKeySecret: { name: 'repository-passphrase' },
    },
  };
}

/**
 * What the BackupRepository controller records after a successful probe Job, written by the benchmark
 * (there is no kubelet to run the probe): initialised, checked just now, so no probe is due for 10 minutes
 * and policies may schedule.
 */
function probedStatus(now: Date) {
  return {
    initialized: true,
    repositoryId: 'bench',
    formatVersion: 1,
    storedBytes: 0,
    size: '0 B',
    lastCheckTime: now.toISOString(),
    observedGeneration: 1,
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Reachable',
        message: 'reachable, key accepted (written by bench/operator.ts)',
        observedGeneration: 1,
        lastTransitionTime: now.toISOString(),
      },
    ],
  };
}

/**
 * A realistic policy whose runs are all far away: a yearly full (1 January 02:00 UTC) and no incremental,
 * an RPO objective, a replica, retention and allowed regions, so every decision path but "create a
 * Backup" runs. Two sources, as history.ts's Backups: a PostgreSQL database and a volume. Retention
 * (maxAge 60d alone) keeps all of the benchmark's history, so the operator deletes none of it.
 */
function quietPolicy(namespace: string, name: string) {
  return {
    apiVersion: API_VERSION,
    kind: 'BackupPolicy',
    metadata: { name, namespace },
    spec: {
      sources: [
        { name: 'shop', postgres: { connectionSecret: { name: 'pg-shop' }, databases: ['shop'] } },
        { name: 'documents', volume: { claimName: 'documents' } },
      ],
      schedule: { timeZone: 'UTC', full: { cron: '0 2 1 1 *' } },
      repository: 'primary',
      replicas: [{ repository: 'replica', region: 'eu-central-1' }],
      retention: { maxAge: '60d' },
      // Today's and yesterday's reports only: the history is created without the reports an operator
      // running all along would have written, and a first start writes every missing day of keepDays.
      reports: { keepDays: 2 },
      objectives: { rpo: '400d' },
      allowedRegions: ['eu-central-1'],
    },
  };
}

/**
 * Makes a policy due every minute from `anchor` (no run before it). Its source selects no PVC, so each
 * Backup fails at once (SourceNotFound) without a Job: the run is over, and the next slot may start.
 */
export function everyMinutePatch(anchor: Date) {
  return {
    spec: {
      sources: [{ name: 'documents', volume: { selector: { matchLabels: { 'tidemark.dev/bench': 'no-such-pvc' } } } }],
      schedule: { timeZone: 'UTC', full: { cron: null, every: '1m', anchor: anchor.toISOString() } },
    },
  };
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Creates the namespaces, repositories (as if probed) and policies with `concurrency` requests in flight. */
export async function createObjects(kc: k8s.KubeConfig, l: Layout, concurrency: number): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const create = (namespace: string, plural: string, body: object) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body });
  await mapLimit(l.namespaces, concurrency, (name) => core.createNamespace({ body: { metadata: { name } } }));
  const repositories = l.namespaces.flatMap((namespace) => REPOSITORIES.map((name) => ({ namespace, name })));
  await mapLimit(repositories, concurrency, async ({ namespace, name }) => {
    const created = (await create(namespace, 'backuprepositories', repository(namespace, name))) as object;
    await custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'backuprepositories',
      name,
      body: { ...created, status: probedStatus(new Date()) },
    });
  });
  await mapLimit(allPolicies(l), concurrency, ({ namespace, name }) =>
    create(namespace, 'backuppolicies', quietPolicy(namespace, name)),
  );
}

/** Applies `everyMinutePatch(anchor)` to the given policies (JSON merge patch: `sources` is replaced). */
export async function makeEveryMinute(
  kc: k8s.KubeConfig,
  policies: { namespace: string; name: string }[],
  anchor: Date,
  concurrency: number,
): Promise<void> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  await mapLimit(policies, concurrency, ({ namespace, name }) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: 'backuppolicies', name, body: everyMinutePatch(anchor) },
      merge,
    ),
  );
}
