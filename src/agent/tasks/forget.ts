import { isCode, TidemarkError } from '../../errors.ts';
import { log } from '../../log.ts';
import type { SnapshotId } from '../../repository/format.ts';
import { immutableError, immutableUntil } from '../../repository/immutability.ts';
import { forget as forgetSnapshots, prune } from '../../repository/prune.ts';
import type { Repository } from '../../repository/repository.ts';
import { REPOSITORY_ENV, required } from './env.ts';
import { SNAPSHOT_ENV, snapshotEnv } from './snapshot.ts';
import type { AgentTask } from './task.ts';

/**
 * `forget`: removes a snapshot by its full id (already gone is fine), then prunes what it freed; a
 * prune blocked by a running backup waits for the next one. Several run at once when retention removes
 * a chain. A snapshot inside the repository's immutability period (REPOSITORY_ENV.immutability, from
 * the BackupRepository spec) is refused whoever asked: fails Immutable, else Locked or a storage code.
 */
export interface ForgetInput {
  snapshotId: string;
  immutability?: string;
}

export interface ForgetResult {
  snapshotId: string;
}

export const forget: AgentTask<'forget', ForgetInput, ForgetResult, { snapshotId: string }> = {
  name: 'forget',
  deadlineSeconds: 30 * 60,
  jobEnv: (job) => snapshotEnv({ choice: { id: job.snapshotId } }),
  input: (env) => {
    const snapshotId = required(env, SNAPSHOT_ENV.id);
    if (!/^[0-9a-f]{64}$/.test(snapshotId))
      throw new TidemarkError('InvalidArgument', `${SNAPSHOT_ENV.id} must be a full snapshot id, not ${snapshotId}`);
    const immutability = env[REPOSITORY_ENV.immutability];
    return { snapshotId, ...(immutability ? { immutability } : {}) };
  },
  run: async (input, { repository }) => forgetSnapshot(await repository(), input.snapshotId, input.immutability),
};

export async function forgetSnapshot(
  repository: Repository,
  id: string,
  immutability: string | undefined,
  now = new Date(),
): Promise<ForgetResult> {
  if (immutability) {
    const snapshot = (await repository.snapshots()).find((s) => s.id === id);
    const until = snapshot && immutableUntil(snapshot.time, immutability, now);
    if (until) throw immutableError(id, repository.storage.description, immutability, until);
  }
  await forgetSnapshots(repository, [id as SnapshotId]);
  try {
    const report = await prune(repository);
    log.info({ event: 'pruned', ...report }, 'pruned');
  } catch (error) {
    if (!isCode(error, 'Locked')) throw error;
    log.info({ event: 'prune-deferred', err: (error as Error).message }, 'prune deferred: the repository is in use');
  }
  return { snapshotId: id };
}
