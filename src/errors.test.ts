import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TidemarkError, withCleanup } from './errors.ts';

describe('withCleanup', () => {
  const failing = (message: string) => async () => {
    throw new TidemarkError('Transient', message);
  };

  test('a cleanup failing after the work failed is reported aside; the work error surfaces', async () => {
    const masked: string[] = [];
    await assert.rejects(
      withCleanup(failing('upload failed'), failing('release failed'), (cleanupError, workError) =>
        masked.push(`${(cleanupError as Error).message} after ${(workError as Error).message}`),
      ),
      { message: 'upload failed' },
    );
    assert.deepEqual(masked, ['release failed after upload failed']);
  });

  test('after successful work, cleanup runs and its failure is the error', async () => {
    let cleaned = 0;
    const cleanup = async () => void cleaned++;
    const notMasked = () => assert.fail('nothing is masked');
    assert.equal(await withCleanup(async () => 7, cleanup, notMasked), 7);
    assert.equal(cleaned, 1);
    await assert.rejects(
      withCleanup(async () => 7, failing('close failed'), notMasked),
      { message: 'close failed' },
    );
  });
});
