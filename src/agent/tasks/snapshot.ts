import type * as k8s from '@kubernetes/client-node';
import { TidemarkError } from '../../errors.ts';
import type { Repository } from '../../repository/repository.ts';
import type { Snapshot } from '../../repository/snapshot.ts';
import { required } from './env.ts';

/**
 * Which snapshot a task works on: TIDEMARK_SNAPSHOT (an id or unique prefix), or the newest snapshot of
 * the source identity TIDEMARK_SNAPSHOT_SOURCE taken before TIDEMARK_SNAPSHOT_BEFORE (resolved by the
 * agent, from the repository's own catalog). TIDEMARK_SNAPSHOT_SCOPE refuses a snapshot whose source
 * identity lacks that prefix (a restore straight from a repository: only its namespace's snapshots).
 */
export const SNAPSHOT_ENV = {
  id: 'TIDEMARK_SNAPSHOT',
  source: 'TIDEMARK_SNAPSHOT_SOURCE',
  before: 'TIDEMARK_SNAPSHOT_BEFORE',
  scope: 'TIDEMARK_SNAPSHOT_SCOPE',
} as const;

/** An id (or unique prefix), or the newest of a source identity (before a time). */
export type SnapshotChoice = { id: string } | { source: string; before?: string };

export interface SnapshotSelection {
  choice: SnapshotChoice;
  /** Only a snapshot whose source identity starts with this (`<namespace>/`). */
  scope?: string;
}

export function snapshotEnv({ choice, scope }: SnapshotSelection): k8s.V1EnvVar[] {
  return [
    ...(scope ? [{ name: SNAPSHOT_ENV.scope, value: scope }] : []),
    ...('id' in choice
      ? [{ name: SNAPSHOT_ENV.id, value: choice.id }]
      : [
          { name: SNAPSHOT_ENV.source, value: choice.source },
          ...(choice.before ? [{ name: SNAPSHOT_ENV.before, value: choice.before }] : []),
        ]),
  ];
}

export function readSnapshotSelection(env: NodeJS.ProcessEnv): SnapshotSelection {
  const before = env[SNAPSHOT_ENV.before];
  if (before && Number.isNaN(new Date(before).getTime()))
    throw new TidemarkError('InvalidArgument', `${SNAPSHOT_ENV.before} ${before} is not a time`);
  const source = env[SNAPSHOT_ENV.source];
  const scope = env[SNAPSHOT_ENV.scope];
  return {
    choice: source ? { source, ...(before ? { before } : {}) } : { id: required(env, SNAPSHOT_ENV.id) },
    ...(scope ? { scope } : {}),
  };
}

export async function chosenSnapshot(repository: Repository, { choice, scope }: SnapshotSelection): Promise<Snapshot> {
  const snapshot =
    'id' in choice
      ? await repository.findSnapshot(choice.id)
      : await repository.latestSnapshotOf(choice.source, choice.before ? new Date(choice.before) : undefined);
  if (scope && !snapshot.source.startsWith(scope))
    throw new TidemarkError(
      'InvalidArgument',
      `snapshot ${snapshot.id.slice(0, 12)} is of ${snapshot.source}, not of namespace ${scope.replace(/\/$/, '')}: a namespace restores only its own snapshots`,
    );
  return snapshot;
}
