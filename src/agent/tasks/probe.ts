import { isCode } from '../../errors.ts';
import { Repository } from '../../repository/repository.ts';
import { openStorage } from '../../repository/storage/url.ts';
import { REPOSITORY_ENV, required } from './env.ts';
import type { AgentTask } from './task.ts';

/**
 * `probe` (BackupRepository controller): reaches the repository, checks the key, initialises an empty
 * location, and reports the bytes stored. It opens the repository itself (an empty one is created).
 * Fails Transient, AccessDenied, ContainerMissing, WrongKey, Corrupt or Unsupported: the operator's
 * Ready reason.
 */
export interface ProbeInput {
  url: string;
  key: string;
}

export interface ProbeResult {
  repositoryId: string;
  /** Whether this probe created the repository. */
  initialized: boolean;
  storedBytes: number;
}

export const probe: AgentTask<'probe', ProbeInput, ProbeResult, void> = {
  name: 'probe',
  deadlineSeconds: 30 * 60,
  jobEnv: () => [],
  input: (env) => ({ url: required(env, REPOSITORY_ENV.url), key: required(env, REPOSITORY_ENV.key) }),
  run: async (input, { env }) => {
    const storage = openStorage(input.url, env);
    const key = Buffer.from(input.key);
    const empty = !(await storage.stat('config').catch((error: unknown) => {
      if (isCode(error, 'ContainerMissing')) return undefined; // init creates the bucket or container
      throw error;
    }));
    const repository = empty ? await Repository.init(storage, key) : await Repository.open(storage, key);
    let storedBytes = 0;
    for await (const blob of storage.list('')) storedBytes += blob.size;
    return { repositoryId: repository.config.id, initialized: empty, storedBytes };
  },
};
