// What the benchmark watches from outside the operator: which policies the operator has reconciled, and
// when each Backup appeared (ms resolution; creationTimestamp only has whole seconds).
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from './objects.ts';

interface Policy extends k8s.KubernetesObject {
  status?: { observedGeneration?: number; conditions?: { type: string }[] };
}

interface Backup extends k8s.KubernetesObject {
  spec: { scheduledTime?: string; policy: string };
}

function informer<T extends k8s.KubernetesObject>(kc: k8s.KubeConfig, plural: string) {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return k8s.makeInformer<T>(
    kc,
    `/apis/${GROUP}/${VERSION}/${plural}`,
    () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }) as never,
  );
}

const keyOf = (o: k8s.KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

/** Resolves when `count` policies carry status.observedGeneration = metadata.generation and a Ready condition. */
export async function watchReconciled(
  kc: k8s.KubeConfig,
  count: number,
): Promise<{ started: () => void; first: Promise<number>; all: Promise<number>; stop: () => Promise<void> }> {
  const reconciled = new Set<string>();
  const policies = informer<Policy>(kc, 'backuppolicies');
  let origin = performance.now();
  let onFirst: (ms: number) => void = () => {};
  let onAll: (ms: number) => void = () => {};
  const first = new Promise<number>((resolve) => {
    onFirst = resolve;
  });
  const all = new Promise<number>((resolve) => {
    onAll = resolve;
  });
  const look = (policy: Policy) => {
    const ready = policy.status?.conditions?.some((c) => c.type === 'Ready');
    if (!ready || policy.status?.observedGeneration !== policy.metadata?.generation) return;
    const size = reconciled.size;
    reconciled.add(keyOf(policy));
    if (size === 0 && reconciled.size === 1) onFirst(performance.now() - origin);
    if (size < count && reconciled.size === count) onAll(performance.now() - origin);
  };
  policies.on('add', look);
  policies.on('update', look);
  await policies.start();
  return {
    /** Times are measured from this call (the operator's start). */
    started: () => {
      origin = performance.now();
    },
    first,
    all,
    stop: () => policies.stop(),
  };
}

export interface BackupSeen {
  name: string;
  scheduledTime: Date;
  /** metadata.creationTimestamp: whole seconds. */
  created: Date;
  /** When this watch saw it added (an upper bound of the creation, in ms). */
  seen: Date;
}

/**
 * Records every Backup added while it runs: a watch from the current resourceVersion (read by a LIST of
 * one item), so the history already stored is neither listed nor cached here.
 */
export async function watchBackups(kc: k8s.KubeConfig): Promise<{ seen: BackupSeen[]; stop: () => Promise<void> }> {
  const seen: BackupSeen[] = [];
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const head = (await custom.listClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'backups',
    limit: 1,
  })) as {
    metadata: { resourceVersion: string };
  };
  const controller = await new k8s.Watch(kc).watch(
    `/apis/${GROUP}/${VERSION}/backups`,
    { resourceVersion: head.metadata.resourceVersion },
    (type: string, backup: Backup) => {
      if (type !== 'ADDED' || !backup.spec.scheduledTime || !backup.metadata?.creationTimestamp) return;
      seen.push({
        name: backup.metadata.name ?? '',
        scheduledTime: new Date(backup.spec.scheduledTime),
        created: new Date(backup.metadata.creationTimestamp),
        seen: new Date(),
      });
    },
    () => {},
  );
  return { seen, stop: async () => controller.abort() };
}
