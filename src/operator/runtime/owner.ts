import type * as k8s from '@kubernetes/client-node';

export interface Owner {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string };
}

/** The owner reference that makes `owner` the controller of an object: garbage-collected with it. */
export function controllerReference(owner: Owner): k8s.V1OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}
