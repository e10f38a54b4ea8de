import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InOrder } from './in-order.ts';

test('results come back in the order the tasks were added, not the order they finished', async () => {
  const tasks = new InOrder<number>();
  tasks.add(sleep(30).then(() => 1));
  tasks.add(Promise.resolve(2));
  tasks.add(sleep(10).then(() => 3));
  assert.deepEqual([await tasks.next(), await tasks.next(), await tasks.next()], [1, 2, 3]);
  assert.equal(await tasks.next(), undefined);
});

test('a task that fails before its turn is not an unhandled rejection, and fails when its turn comes', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const tasks = new InOrder<string>();
    tasks.add(sleep(50).then(() => 'first'));
    tasks.add(Promise.reject(new Error('second failed early')));
    await sleep(20);
    assert.equal(await tasks.next(), 'first');
    await assert.rejects(tasks.next(), /second failed early/);
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('drain waits for every task, failed or not, and leaves nothing queued', async () => {
  const tasks = new InOrder<number>();
  let finished = 0;
  tasks.add(sleep(10).then(() => ++finished));
  tasks.add(sleep(5).then(() => Promise.reject(new Error('x'))));
  await tasks.drain();
  assert.equal(finished, 1);
  assert.equal(tasks.size, 0);
});
