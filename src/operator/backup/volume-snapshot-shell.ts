import type * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../api/kinds.ts';
import type { OperatorContext } from '../context.ts';
import { LABELS } from '../jobs/labels.ts';
import { labelValue } from '../runtime/labels.ts';
import { SNAPSHOT_API, type VolumeSnapshot, type VolumeSnapshotObserved } from './volume-snapshot.ts';

const code = (error: unknown) => (error as { code?: number }).code;

/**
 * What the VolumeSnapshot step looks at: whether the snapshot API is served (listing it answers 404
 * when not), this Backup's VolumeSnapshots and restored PVCs, and the source PVCs.
 */
export async function observeVolumeSnapshots(
  ctx: OperatorContext,
  backup: Backup,
  claims: string[],
): Promise<VolumeSnapshotObserved> {
  const namespace = backup.metadata.namespace ?? '';
  const labelSelector = `${LABELS.backup}=${labelValue(backup.metadata.name ?? '')}`;
  const observed: VolumeSnapshotObserved = {
    apiInstalled: true,
    snapshots: new Map(),
    restoredClaims: new Map(),
    sourceClaims: new Map(),
  };
  try {
    const list = (await ctx.resources.api.listNamespacedCustomObject({
      ...SNAPSHOT_API,
      namespace,
      labelSelector,
    })) as { items: VolumeSnapshot[] };
    for (const s of list.items) observed.snapshots.set(s.metadata.name ?? '', s);
  } catch (error) {
    if (code(error) !== 404) throw error;
    return { ...observed, apiInstalled: false };
  }
  const restored = await ctx.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector });
  for (const c of restored.items) observed.restoredClaims.set(c.metadata?.name ?? '', c);
  for (const claim of claims) {
    try {
      observed.sourceClaims.set(claim, await ctx.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace }));
    } catch (error) {
      if (code(error) !== 404) throw error;
    }
  }
  return observed;
}

/** Creates VolumeSnapshots and restored PVCs (an existing one is kept). */
export async function createVolumeSnapshotObjects(ctx: OperatorContext, objects: k8s.KubernetesObject[]) {
  for (const object of objects) {
    const namespace = object.metadata?.namespace ?? '';
    try {
      if (object.kind === 'VolumeSnapshot')
        await ctx.resources.api.createNamespacedCustomObject({ ...SNAPSHOT_API, namespace, body: object });
      else
        await ctx.core.createNamespacedPersistentVolumeClaim({
          namespace,
          body: object as k8s.V1PersistentVolumeClaim,
        });
    } catch (error) {
      if (code(error) !== 409) throw error;
    }
  }
}

/** Deletes a finished run's VolumeSnapshots and restored PVCs (already gone is fine). */
export async function deleteVolumeSnapshotObjects(
  ctx: OperatorContext,
  namespace: string,
  leftovers: { snapshots: string[]; claims: string[] },
) {
  const ignoreGone = (error: unknown) => {
    if (code(error) !== 404) throw error;
  };
  for (const name of leftovers.claims)
    await ctx.core.deleteNamespacedPersistentVolumeClaim({ name, namespace }).catch(ignoreGone);
  for (const name of leftovers.snapshots)
    await ctx.resources.api.deleteNamespacedCustomObject({ ...SNAPSHOT_API, namespace, name }).catch(ignoreGone);
}
