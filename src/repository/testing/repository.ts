// Repositories for tests, which create many: their keys are derived cheaply.
import type { ScryptParams } from '../crypto.ts';
import { type InitOptions, Repository } from '../repository.ts';
import { FileStorage } from '../storage/file.ts';

/** Scrypt parameters for tests: 32 times cheaper than DEFAULT_SCRYPT, so that tests can create many keys. */
export const TEST_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };

/**
 * A new repository for tests in `dir` (file storage), its key derived with TEST_SCRYPT. The passphrase matters
 * only to a test that opens the repository again.
 */
export async function testRepository(
  dir: string,
  passphrase: Buffer | string = 'test',
  options: Omit<InitOptions, 'scrypt'> = {},
): Promise<Repository> {
  const key = typeof passphrase === 'string' ? Buffer.from(passphrase) : passphrase;
  return Repository.init(new FileStorage(dir), key, { ...options, scrypt: TEST_SCRYPT });
}
