// The CSI snapshot API (snapshot.storage.k8s.io/v1 VolumeSnapshot) without a snapshot controller or
// CSI driver: just enough CRD for the API server to serve the kind, so the operator's VolumeSnapshot
// path runs against the real control plane. A test stands in for the snapshot controller by setting
// status.readyToUse itself.
import { stringify } from 'yaml';
import type { Cluster } from './cluster.ts';

const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

export const volumeSnapshotCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: {
    name: 'volumesnapshots.snapshot.storage.k8s.io',
    // *.k8s.io groups need this; the value is the one the upstream external-snapshotter CRD carries.
    annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes-csi/external-snapshotter/pull/814' },
  },
  spec: {
    group: 'snapshot.storage.k8s.io',
    scope: 'Namespaced',
    names: {
      kind: 'VolumeSnapshot',
      listKind: 'VolumeSnapshotList',
      plural: 'volumesnapshots',
      singular: 'volumesnapshot',
      shortNames: ['vs'],
    },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
      },
    ],
  },
};

/** Installs the VolumeSnapshot CRD and waits until the API server serves it. */
export async function installVolumeSnapshotApi(cluster: Pick<Cluster, 'kubectl'>): Promise<void> {
  await cluster.kubectl(['apply', '-f', '-'], stringify(volumeSnapshotCrd));
  await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/volumesnapshots.snapshot.storage.k8s.io',
  ]);
}
