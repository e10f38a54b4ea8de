import type * as k8s from '@kubernetes/client-node';
import type { Backup } from '../../api/kinds.ts';

/**
 * The cached Backups of each policy, kept up to date from the Backup informer's events. A policy's
 * reconcile then costs its own history, not a pass over every Backup of its namespace (thousands of
 * policies with weeks of runs each put hundreds of thousands of Backups in one cache).
 * A Backup's spec (its policy) never changes, so an update only replaces the object.
 */
export class BackupsByPolicy implements BackupGroups {
  private readonly index = new Map<string, PolicyBackups>();
  /** The same groups by namespace, for finding a Backup by name without a pass over every group. */
  private readonly namespaces = new Map<string, Set<PolicyBackups>>();

  /** Follows `informer`: call before it starts, so its initial LIST fills the index too. */
  static following(informer: k8s.Informer<Backup & k8s.KubernetesObject>): BackupsByPolicy {
    const index = new BackupsByPolicy();
    informer.on('add', (b) => index.put(b));
    informer.on('update', (b) => index.put(b));
    informer.on('delete', (b) => index.remove(b));
    return index;
  }

  /** An index of `backups`, as the informer's events would have made it. */
  static from(backups: Iterable<Backup>): BackupsByPolicy {
    const index = new BackupsByPolicy();
    for (const backup of backups) index.put(backup);
    return index;
  }

  put(backup: Backup): void {
    const key = policyKey(backup.metadata.namespace, backup.spec.policy);
    let group = this.index.get(key);
    if (!group) {
      group = new PolicyBackups(backup.metadata.namespace ?? '', backup.spec.policy);
      this.index.set(key, group);
      const inNamespace = this.namespaces.get(group.namespace) ?? new Set();
      this.namespaces.set(group.namespace, inNamespace.add(group));
    }
    group.put(backup);
  }

  remove(backup: Backup): void {
    const key = policyKey(backup.metadata.namespace, backup.spec.policy);
    const group = this.index.get(key);
    if (!group) return;
    group.remove(backup.metadata.name ?? '');
    if (group.size > 0) return;
    this.index.delete(key);
    const inNamespace = this.namespaces.get(group.namespace);
    inNamespace?.delete(group);
    if (inNamespace?.size === 0) this.namespaces.delete(group.namespace);
  }

  /** The Backups whose spec.policy is `policy`, in `namespace` (a copy the caller may change). */
  of(namespace: string, policy: string): Backup[] {
    return [...(this.index.get(policyKey(namespace, policy))?.backups ?? [])];
  }

  groups(): Iterable<BackupGroup> {
    return this.index.values();
  }

  backupsOf(namespace: string, policy: string): readonly Backup[] | undefined {
    return this.index.get(policyKey(namespace, policy))?.backups;
  }

  policyOf(namespace: string, backupName: string): string | undefined {
    for (const group of this.namespaces.get(namespace) ?? []) if (group.has(backupName)) return group.policy;
    return undefined;
  }
}

/**
 * The Backups grouped by the policy they name, each group's array replaced (never changed) when one of
 * its Backups is: what is computed from a group can be kept for as long as its array is the same.
 */
export interface BackupGroups {
  groups(): Iterable<BackupGroup>;
  /** The group's array of the policy `policy` in `namespace`; undefined when no Backup names it. */
  backupsOf(namespace: string, policy: string): readonly Backup[] | undefined;
  /** The policy the Backup `backupName` in `namespace` belongs to; undefined when there is none. */
  policyOf(namespace: string, backupName: string): string | undefined;
}

export interface BackupGroup {
  readonly namespace: string;
  readonly policy: string;
  readonly backups: readonly Backup[];
}

class PolicyBackups implements BackupGroup {
  private readonly byName = new Map<string, Backup>();
  private list: readonly Backup[] | undefined;

  constructor(
    readonly namespace: string,
    readonly policy: string,
  ) {}

  get size(): number {
    return this.byName.size;
  }

  get backups(): readonly Backup[] {
    this.list ??= [...this.byName.values()];
    return this.list;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  put(backup: Backup): void {
    this.byName.set(backup.metadata.name ?? '', backup);
    this.list = undefined;
  }

  remove(name: string): void {
    if (this.byName.delete(name)) this.list = undefined;
  }
}

const policyKey = (namespace: string | undefined, policy: string) => `${namespace ?? ''}/${policy}`;
