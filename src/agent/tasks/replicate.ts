import { copySnapshots } from '../../repository/copy.ts';
import { openReplica } from '../../repository/replica.ts';
import { openStorage } from '../../repository/storage/url.ts';
import { REPLICA_ENV, required } from './env.ts';
import { chosenSnapshot, readSnapshotSelection, type SnapshotSelection, snapshotEnv } from './snapshot.ts';
import type { AgentTask } from './task.ts';

/**
 * `replicate`: copies one snapshot (snapshot.ts) from the repository to the replica (REPLICA_ENV,
 * written by the operator's repositoryAccess in the replica role), uploading only what the replica
 * lacks. The replica is opened with openReplica: it shares the primary's chunk identity where it can
 * (then only trees and the chunks it lacks are read from the primary). Fails with a storage code of either side (Transient, AccessDenied, WrongKey, Corrupt, NotFound).
 */
export interface ReplicateInput {
  snapshot: SnapshotSelection;
  replicaUrl: string;
  replicaKey: string;
}

export interface ReplicateResult {
  snapshotId: string;
  uploadedBytes: number;
}

export const replicate: AgentTask<'replicate', ReplicateInput, ReplicateResult, { snapshotId: string }> = {
  name: 'replicate',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) => snapshotEnv({ choice: { id: job.snapshotId } }),
  input: (env) => ({
    snapshot: readSnapshotSelection(env),
    replicaUrl: required(env, REPLICA_ENV.url),
    replicaKey: required(env, REPLICA_ENV.key),
  }),
  run: async (input, { env, repository, onProgress }) => {
    const primary = await repository();
    const snapshot = await chosenSnapshot(primary, input.snapshot);
    const replica = await openReplica(
      primary,
      openStorage(input.replicaUrl, replicaEnvironment(env)),
      Buffer.from(input.replicaKey),
    );
    const report = await copySnapshots(primary, replica, [snapshot], { onProgress });
    return { snapshotId: snapshot.id, uploadedBytes: report.uploadedBytes };
  },
};

/** The replica's view of the environment: REPLICA_-prefixed variables override the unprefixed ones. */
export function replicaEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const prefix = REPLICA_ENV.credentialsPrefix;
  const prefixed = Object.entries(env).filter(([name]) => name.startsWith(prefix));
  return { ...env, ...Object.fromEntries(prefixed.map(([name, value]) => [name.slice(prefix.length), value])) };
}
