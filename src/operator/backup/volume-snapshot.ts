import type * as k8s from '@kubernetes/client-node';
import type { Source } from '../../api/backuppolicy.ts';
import type { Backup } from '../../api/kinds.ts';
import { LABELS } from '../jobs/labels.ts';
import { ownedJobName } from '../jobs/naming.ts';
import { labelValue } from '../runtime/labels.ts';
import { controllerReference } from '../runtime/owner.ts';

/** The CSI snapshot API a volume source with volumeSnapshotClassName needs. */
export const SNAPSHOT_API = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots' } as const;
/** How long a VolumeSnapshot may take to become readyToUse before the Backup fails. */
export const SNAPSHOT_READY_TIMEOUT_MS = 10 * 60_000;
export const SNAPSHOT_POLL_MS = 5000;

export interface VolumeSnapshot {
  apiVersion: string;
  kind: 'VolumeSnapshot';
  metadata: k8s.V1ObjectMeta;
  spec: { volumeSnapshotClassName?: string; source: { persistentVolumeClaimName?: string } };
  status?: { readyToUse?: boolean; restoreSize?: string; error?: { message?: string } };
}

export interface VolumeSnapshotObserved {
  /** False when the cluster does not serve snapshot.storage.k8s.io/v1 VolumeSnapshots. */
  apiInstalled: boolean;
  /** This Backup's VolumeSnapshots, and the PVCs restored from them, by name. */
  snapshots: Map<string, VolumeSnapshot>;
  restoredClaims: Map<string, k8s.V1PersistentVolumeClaim>;
  /** The source PVCs, by name: the restored copy takes their storage class, access modes and size. */
  sourceClaims: Map<string, k8s.V1PersistentVolumeClaim>;
}

export type VolumeSnapshotStep =
  /** Every snapshot is ready: read `claim` from the restored PVC `readFrom.get(claim)`; create what is missing. */
  | { kind: 'ready'; readFrom: Map<string, string>; create: k8s.KubernetesObject[] }
  | { kind: 'waiting'; message: string; create: k8s.KubernetesObject[] }
  | { kind: 'failed'; reason: string; message: string };

/** The VolumeSnapshot of the `index`-th claim of a Backup, and the PVC restored from it, share this name. */
/** Per Backup instance, like its Jobs: a re-created Backup of the same name never adopts an old snapshot. */
export const volumeSnapshotName = (backup: Backup, index: number) =>
  ownedJobName(backup, `${backup.metadata.name}-snap-${index}`);

const owned = (backup: Backup, name: string): k8s.V1ObjectMeta => ({
  name,
  namespace: backup.metadata.namespace ?? '',
  labels: { [LABELS.backup]: labelValue(backup.metadata.name ?? ''), 'app.kubernetes.io/managed-by': 'tidemark' },
  ownerReferences: [controllerReference(backup)],
});

/**
 * Pure (R-BACKUP, crash-consistent volumes): a volume source with volumeSnapshotClassName is read
 * from a CSI VolumeSnapshot of each PVC, restored into a PVC the agent mounts read-only; never from
 * the live PVC. Without the snapshot API, a snapshot error or a snapshot not ready within
 * SNAPSHOT_READY_TIMEOUT_MS the run fails with what is missing.
 */
export function volumeSnapshotStep(
  backup: Backup,
  source: Source,
  claims: string[],
  observed: VolumeSnapshotObserved,
  now: Date,
): VolumeSnapshotStep {
  const className = source.volume?.volumeSnapshotClassName ?? '';
  if (!observed.apiInstalled)
    return {
      kind: 'failed',
      reason: 'VolumeSnapshotsUnavailable',
      message: `source ${source.name} sets volumeSnapshotClassName ${className}, but this cluster does not serve the VolumeSnapshot API (${SNAPSHOT_API.group}/${SNAPSHOT_API.version}); install the CSI snapshot CRDs and snapshot controller, or remove volumeSnapshotClassName to read the live PVC`,
    };
  const create: k8s.KubernetesObject[] = [];
  const waiting: string[] = [];
  const readFrom = new Map<string, string>();
  for (const [index, claim] of claims.entries()) {
    const name = volumeSnapshotName(backup, index);
    const sourceClaim = observed.sourceClaims.get(claim);
    if (!sourceClaim)
      return { kind: 'failed', reason: 'SourceNotFound', message: `PersistentVolumeClaim ${claim} does not exist` };
    const snapshot = observed.snapshots.get(name);
    if (!snapshot) {
      create.push(volumeSnapshot(backup, name, claim, className));
      waiting.push(notReady(name, claim, className));
      continue;
    }
    if (snapshot.status?.error?.message)
      return {
        kind: 'failed',
        reason: 'VolumeSnapshotFailed',
        message: `VolumeSnapshot ${name} of PVC ${claim} (class ${className}) failed: ${snapshot.status.error.message}`,
      };
    if (!snapshot.status?.readyToUse) {
      const age = now.getTime() - Date.parse(String(snapshot.metadata.creationTimestamp ?? now.toISOString()));
      if (age > SNAPSHOT_READY_TIMEOUT_MS)
        return {
          kind: 'failed',
          reason: 'VolumeSnapshotNotReady',
          message: `VolumeSnapshot ${name} of PVC ${claim} (class ${className}) was not ready to use within ${SNAPSHOT_READY_TIMEOUT_MS / 60_000}m; is the CSI snapshot controller running and does the class exist?`,
        };
      waiting.push(notReady(name, claim, className));
      continue;
    }
    readFrom.set(claim, name);
    if (!observed.restoredClaims.has(name)) create.push(restoredClaim(backup, name, sourceClaim, snapshot));
  }
  if (waiting.length > 0) return { kind: 'waiting', message: waiting.join('; '), create };
  return { kind: 'ready', readFrom, create };
}

const notReady = (name: string, claim: string, className: string) =>
  `VolumeSnapshot ${name} of PVC ${claim} (class ${className}) is not ready to use yet`;

/** What a finished run leaves behind: its VolumeSnapshots and restored PVCs go as soon as it ended. */
export function volumeSnapshotLeftovers(observed: VolumeSnapshotObserved): { snapshots: string[]; claims: string[] } {
  return { snapshots: [...observed.snapshots.keys()], claims: [...observed.restoredClaims.keys()] };
}

function volumeSnapshot(backup: Backup, name: string, claim: string, className: string): VolumeSnapshot {
  return {
    apiVersion: `${SNAPSHOT_API.group}/${SNAPSHOT_API.version}`,
    kind: 'VolumeSnapshot',
    metadata: owned(backup, name),
    spec: { volumeSnapshotClassName: className, source: { persistentVolumeClaimName: claim } },
  };
}

function restoredClaim(
  backup: Backup,
  name: string,
  source: k8s.V1PersistentVolumeClaim,
  snapshot: VolumeSnapshot,
): k8s.V1PersistentVolumeClaim {
  const size = snapshot.status?.restoreSize ?? source.spec?.resources?.requests?.storage ?? '1Gi';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: owned(backup, name),
    spec: {
      accessModes: source.spec?.accessModes ?? ['ReadWriteOnce'],
      ...(source.spec?.storageClassName ? { storageClassName: source.spec.storageClassName } : {}),
      resources: { requests: { storage: size } },
      dataSource: { apiGroup: SNAPSHOT_API.group, kind: 'VolumeSnapshot', name },
    },
  };
}
