import type { Condition } from '../../api/common.ts';
import type { BackupPolicy, BackupRepository } from '../../api/kinds.ts';

/**
 * Held on a BackupRepository while policies use it: deleting it then waits (condition InUse) until
 * they are deleted or point elsewhere. Backups alone do not hold it: their snapshots stay in the
 * storage whatever happens to the object, and a restore can name the repository again once re-created.
 */
export const IN_USE_FINALIZER = 'tidemark.dev/in-use';

/** The live policies that write to a repository, as primary or as a replica (`name (role)`). */
export function repositoryUsers(repository: BackupRepository, policies: BackupPolicy[]): string[] {
  const name = repository.metadata.name;
  const users: string[] = [];
  for (const policy of policies) {
    if (policy.metadata.deletionTimestamp) continue;
    if (policy.spec.repository === name) users.push(`${policy.metadata.name} (primary)`);
    else if (policy.spec.replicas?.some((r) => r.repository === name)) users.push(`${policy.metadata.name} (replica)`);
  }
  return users.sort();
}

export interface InUseDecision {
  /** Whether the in-use finalizer should be on the object. */
  finalizer: boolean;
  condition: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

/**
 * Pure: the in-use finalizer is present exactly while a policy uses the repository and its namespace
 * is not being deleted (everything in a deleted namespace goes; nothing may hold that up).
 */
export function decideInUse(observed: {
  repository: BackupRepository;
  policies: BackupPolicy[];
  namespaceTerminating: boolean;
}): InUseDecision {
  const { repository, namespaceTerminating } = observed;
  const users = repositoryUsers(repository, observed.policies);
  const deleting = Boolean(repository.metadata.deletionTimestamp);
  const previous = repository.status?.conditions?.find((c) => c.type === 'InUse');
  if (users.length === 0 || namespaceTerminating)
    return {
      finalizer: false,
      condition: {
        type: 'InUse',
        status: 'False',
        reason: users.length === 0 ? 'Unused' : 'NamespaceDeleted',
        message: users.length === 0 ? 'no BackupPolicy uses this repository' : 'the namespace is being deleted',
      },
    };
  const list = users.join(', ');
  if (!deleting)
    return {
      finalizer: true,
      condition: { type: 'InUse', status: 'True', reason: 'UsedByPolicies', message: `used by BackupPolicy ${list}` },
    };
  const message = `deletion waits until no BackupPolicy uses this repository: ${list}; delete them or point them at another repository (the stored snapshots are never deleted with this object)`;
  return {
    finalizer: true,
    condition: { type: 'InUse', status: 'True', reason: 'DeletionBlocked', message },
    ...(previous?.reason === 'DeletionBlocked' && previous.message === message
      ? {}
      : { event: { type: 'Warning' as const, reason: 'DeletionBlocked', message } }),
  };
}
