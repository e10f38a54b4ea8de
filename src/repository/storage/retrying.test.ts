import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
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

/** A fake clock: records the delays instead of waiting, and moves its time on by each. */
function fakeSleep(): { delays: number[]; sleep: (ms: number) => Promise<void>; now: () => number } {
  const delays: number[] = [];
  let time = 0;
  return {
    delays,
    sleep: async (ms) => {
      delays.push(ms);
      time += ms;
    },
    now: () => time,
  };
}

describe('retrying', () => {
  test('retries retryable errors with exponential backoff, capped, with jitter in the upper half', async () => {
    const clock = fakeSleep();
    const storage = flaky([transient(), transient(), transient(), transient()]);
    const retried = retrying(storage, {
      baseDelayMs: 100,
      maxDelayMs: 300,
      sleep: clock.sleep,
      now: clock.now,
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

  test('keeps retrying for its time budget, then gives up keeping the code and saying how long it tried', async () => {
    const clock = fakeSleep();
    const events: string[] = [];
    const storage = flaky(Array.from({ length: 100 }, transient));
    const retried = retrying(storage, {
      budgetMs: 60_000,
      baseDelayMs: 1000,
      maxDelayMs: 10_000,
      sleep: clock.sleep,
      now: clock.now,
      random: () => 1,
      onRetry: (e) => events.push(`${e.operation} ${e.name} #${e.attempt} ${e.error.code}`),
    });
    await assert.rejects(retried.stat('x'), (error: TidemarkError) => {
      assert.equal(error.code, 'Transient');
      assert.equal(error.retryable, true);
      assert.equal(error.message, 'after 9 attempts over 55 s: mem://flaky: x: HTTP 503');
      return true;
    });
    // 1 + 2 + 4 + 8 + 10 + 10 + 10 + 10 s waited; a ninth wait of 10 s would end past the minute.
    assert.deepEqual(clock.delays, [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
    assert.equal(storage.calls, 9);
    assert.deepEqual(events.slice(0, 2), ['stat x #1 Transient', 'stat x #2 Transient']);
  });

  test('a budget of 0 makes no retries', async () => {
    const storage = flaky([transient()]);
    await assert.rejects(retrying(storage, { budgetMs: 0, sleep: fakeSleep().sleep }).get('x'), {
      code: 'Transient',
      message: 'mem://flaky: x: HTTP 503',
    });
    assert.equal(storage.calls, 1);
  });

  test('each operation has its own budget', async () => {
    const clock = fakeSleep();
    const retried = retrying(flaky(Array.from({ length: 3 }, transient)), {
      budgetMs: 1000,
      baseDelayMs: 400,
      maxDelayMs: 400,
      sleep: clock.sleep,
      now: clock.now,
      random: () => 1,
    });
    await assert.rejects(retried.get('x'), { message: /^after 3 attempts over 1 s/ });
    assert.equal((await retried.get('x')).toString(), 'data', 'a fresh budget for the next operation');
  });

  test('a permanent error after retries also says how many attempts were made', async () => {
    const storage = flaky([transient(), new TidemarkError('NotFound', 'mem://flaky: get x: not found')]);
    await assert.rejects(retrying(storage, { sleep: fakeSleep().sleep }).get('x'), {
      code: 'NotFound',
      message: 'after 2 attempts over 0 s: mem://flaky: get x: not found',
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

  test('a streamed put is retried while its stream is unread, and fails at once after reading from it', async () => {
    const base = flaky([]);
    let read = false;
    const streaming: Storage = {
      ...base,
      putStream: async (_name, data) => {
        if (read) data.read();
        base.calls++;
        if (base.calls <= 2) throw transient();
        return 4;
      },
    };
    const retried = retrying(streaming, { sleep: fakeSleep().sleep });
    assert.equal(await retried.putStream?.('x', Readable.from([Buffer.from('data')])), 4);
    assert.equal(base.calls, 3);

    base.calls = 0;
    read = true;
    await assert.rejects(retried.putStream?.('x', Readable.from([Buffer.from('data')])) as Promise<number>, {
      code: 'Transient',
    });
    assert.equal(base.calls, 1);
  });
});
