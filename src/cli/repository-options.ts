import { readFileSync } from 'node:fs';
import { TidemarkError } from '../errors.ts';
import { Repository } from '../repository/repository.ts';
import type { Storage } from '../repository/storage/storage.ts';
import { openStorage } from '../repository/storage/url.ts';

export interface RepoOptions {
  repo?: string;
  keyFile?: string;
  json?: boolean;
  /** How long each storage operation keeps retrying (a duration); else TIDEMARK_RETRY_BUDGET, else 2m. */
  retryBudget?: string;
}

export const RETRY_BUDGET_HELP =
  'how long each storage operation keeps retrying through an outage, e.g. 90s or 5m; 0s for no retries (or TIDEMARK_RETRY_BUDGET; default 2m)';

/** Opens a storage with the retry budget of `--retry-budget`, else of the environment. */
export function storageAt(url: string, options: RepoOptions): Storage {
  return openStorage(
    url,
    options.retryBudget === undefined ? process.env : { ...process.env, TIDEMARK_RETRY_BUDGET: options.retryBudget },
  );
}

/** The passphrase: `--key-file`, else TIDEMARK_REPO_KEY. Never taken from a URL or argument. */
export function passphrase(keyFile: string | undefined, envName: string, flag: string): Buffer {
  if (keyFile) return Buffer.from(readFileSync(keyFile, 'utf8').replace(/\r?\n$/, ''));
  const value = process.env[envName];
  if (!value) throw new TidemarkError('InvalidArgument', `no repository key: set ${envName} or pass ${flag}`);
  return Buffer.from(value);
}

export function repoUrl(options: RepoOptions): string {
  const url = options.repo ?? process.env.TIDEMARK_REPO;
  if (!url) throw new TidemarkError('InvalidArgument', 'no repository: pass --repo URL or set TIDEMARK_REPO');
  return url;
}

export async function openRepository(options: RepoOptions): Promise<Repository> {
  return Repository.open(
    storageAt(repoUrl(options), options),
    passphrase(options.keyFile, 'TIDEMARK_REPO_KEY', '--key-file'),
  );
}

export function print(options: RepoOptions, value: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}
