import type * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../api/kinds.ts';

/**
 * The cached Backups of each policy, kept up to date from the Backup informer's events. A policy's
 * reconcile then costs its own history, not a pass over every Backup of its namespace (thousands of
 * policies with weeks of runs each put hundreds of thousands of Backups in one cache).
 * A Backup's spec (its policy) never changes, so an update only replaces the object.
 */
export class BackupsByPolicy {
  private readonly index = new Map<string, Map<string, Backup>>();

  /** Follows `informer`: call before it starts, so its initial LIST fills the index too. */
  static following(informer: k8s.Informer<Backup & k8s.KubernetesObject>): BackupsByPolicy {
    const index = new BackupsByPolicy();
    informer.on('add', (b) => index.put(b));
    informer.on('update', (b) => index.put(b));
    informer.on('delete', (b) => index.remove(b));
    return index;
  }

  put(backup: Backup): void {
    const key = policyKey(backup.metadata.namespace, backup.spec.policy);
    const backups = this.index.get(key) ?? new Map<string, Backup>();
    this.index.set(key, backups);
    backups.set(backup.metadata.name ?? '', backup);
  }

  remove(backup: Backup): void {
    const key = policyKey(backup.metadata.namespace, backup.spec.policy);
    const backups = this.index.get(key);
    backups?.delete(backup.metadata.name ?? '');
    if (backups?.size === 0) this.index.delete(key);
  }

  /** The Backups whose spec.policy is `policy`, in `namespace`. */
  of(namespace: string, policy: string): Backup[] {
    return [...(this.index.get(policyKey(namespace, policy))?.values() ?? [])];
  }
}

const policyKey = (namespace: string | undefined, policy: string) => `${namespace ?? ''}/${policy}`;
