import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TidemarkError } from '../../errors.ts';
import { retrying } from './retrying.ts';
import type { BlobInfo, Storage } from './storage.ts';

/** A storage whose operations fail with the queued errors first, then succeed; every other method is unused. */
function flaky(errors: unknown[]): Storage & { calls: number } {
  const fail = () => {
    storage.calls++;
    if (errors.length) throw errors.shift();
  };
  const storage = {
    description: 'mem://flaky',
    calls: 0,
    get: async () => {
      fail();
      return Buffer.from('data');
    },
    put: async () => fail(),
    stat: async (name: string) => {
      fail();
      return { name, size: 4 };
    },
    delete: async () => fail(),
    ensureContainer: async () => fail(),
    async *list(): AsyncIterable<BlobInfo> {
      fail();
      yield { name: 'a', size: 1 };
    },
  };
  return storage;
}

const transient = () => new TidemarkError('Transient', 'mem://flaky: x: HTTP 503');

/** A fake clock: records the delays instead of waiting. */
function fakeSleep(): { delays: number[]; sleep: (ms: number) => Promise<void> } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

describe('retrying', () => {
  test('retries retryable errors with exponential backoff, capped, with jitter in the upper half', async () => {
    const clock = fakeSleep();
    const storage = flaky([transient(), transient(), transient(), transient()]);
    const retried = retrying(storage, {
      attempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 300,
      sleep: clock.sleep,
      random: () => 1,
    });
    assert.equal((await retried.get('x')).toString(), 'data');
    assert.equal(storage.calls, 5);
    assert.deepEqual(clock.delays, [100, 200, 300, 300]);

    const low = fakeSleep();
    await retrying(flaky([transient(), transient()]), { baseDelayMs: 100, sleep: low.sleep, random: () => 0 }).put(
      'x',
      Buffer.alloc(0),
    );
    assert.deepEqual(low.delays, [50, 100]);
  });

  test('does not retry a permanent error, and passes it through unchanged', async () => {
    const clock = fakeSleep();
    const denied = new TidemarkError('AccessDenied', 'mem://flaky: put x: denied');
    const storage = flaky([denied]);
    await assert.rejects(
      retrying(storage, { sleep: clock.sleep }).put('x', Buffer.alloc(0)),
      (error) => error === denied,
    );
    assert.equal(storage.calls, 1);
    assert.deepEqual(clock.delays, []);
  });

  test('gives up after the last attempt, keeping the code and saying how many attempts were made', async () => {
    const clock = fakeSleep();
    const events: string[] = [];
    const storage = flaky([transient(), transient(), transient()]);
    const retried = retrying(storage, {
      attempts: 3,
      sleep: clock.sleep,
      onRetry: (e) => events.push(`${e.operation} ${e.name} #${e.attempt} ${e.error.code}`),
    });
    await assert.rejects(retried.stat('x'), (error: TidemarkError) => {
      assert.equal(error.code, 'Transient');
      assert.equal(error.retryable, true);
      assert.equal(error.message, 'after 3 attempts: mem://flaky: x: HTTP 503');
      return true;
    });
    assert.equal(storage.calls, 3);
    assert.deepEqual(events, ['stat x #1 Transient', 'stat x #2 Transient']);
  });

  test('a permanent error after retries also says how many attempts were made', async () => {
    const storage = flaky([transient(), new TidemarkError('NotFound', 'mem://flaky: get x: not found')]);
    await assert.rejects(retrying(storage, { sleep: fakeSleep().sleep }).get('x'), {
      code: 'NotFound',
      message: 'after 2 attempts: mem://flaky: get x: not found',
    });
  });

  test('an error that is not a TidemarkError becomes Internal, naming the operation, blob and storage', async () => {
    const storage = flaky([new Error('boom')]);
    await assert.rejects(retrying(storage, { sleep: fakeSleep().sleep }).delete('packs/p'), {
      code: 'Internal',
      message: 'mem://flaky: delete packs/p: boom',
    });
    assert.equal(storage.calls, 1);
  });

  test('retries list and ensureContainer too', async () => {
    const storage = flaky([transient(), transient()]);
    const retried = retrying(storage, { sleep: fakeSleep().sleep });
    await retried.ensureContainer();
    const listed = [];
    for await (const blob of retried.list('')) listed.push(blob);
    assert.deepEqual(listed, [{ name: 'a', size: 1 }]);
    assert.equal(storage.calls, 4);
  });
});
