import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bounded, settledInOrder } from './bounded.ts';

/** A task that ends when told to. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('Bounded admits at most maxTasks at once and the next as soon as one ends', async () => {
  const bounded = new Bounded(2, 1000);
  const gates = [gate(), gate(), gate()];
  let running = 0;
  let started = 0;
  const starts = gates.map((g) =>
    bounded.start(0, async () => {
      running++;
      started++;
      await g.promise;
      running--;
    }),
  );
  await tick();
  assert.equal(started, 2);
  gates[0]?.open();
  await tick();
  assert.equal(started, 3);
  assert.equal(running, 2);
  gates[1]?.open();
  gates[2]?.open();
  for (const s of starts) await (await s).result;
  assert.equal(running, 0);
});

test('Bounded keeps declared bytes within the budget, admits a task over the whole budget alone, first come first served', async () => {
  const bounded = new Bounded(10, 100);
  const order: string[] = [];
  const g = { a: gate(), big: gate(), c: gate() };
  const a = bounded.start(60, async () => {
    order.push('a');
    await g.a.promise;
  });
  const big = bounded.start(500, async () => {
    order.push('big');
    await g.big.promise;
  });
  const c = bounded.start(10, async () => {
    order.push('c');
    await g.c.promise;
  });
  await tick();
  assert.deepEqual(order, ['a'], 'big waits for the budget; c waits behind big');
  g.a.open();
  await tick();
  assert.deepEqual(order, ['a', 'big'], 'big runs alone');
  g.big.open();
  await tick();
  assert.deepEqual(order, ['a', 'big', 'c']);
  g.c.open();
  for (const s of [a, big, c]) await (await s).result;
});

test('Bounded releases the slot of a task that throws, synchronously or not', async () => {
  const bounded = new Bounded(1, 10);
  const sync = await bounded.start(0, () => {
    throw new Error('at once');
  });
  await assert.rejects(sync.result, /at once/);
  const later = await bounded.start(0, async () => {
    throw new Error('later');
  });
  await assert.rejects(later.result, /later/);
  const next = await bounded.start(0, async () => 'ran');
  assert.equal(await next.result, 'ran');
});

test('settledInOrder gives outcomes in item order with at most `limit` running', async () => {
  let running = 0;
  let most = 0;
  const outcomes = await settledInOrder([5, 1, 4, 2, 3], 2, async (n) => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, n));
    running--;
    if (n === 4) throw new Error('four');
    return n * 10;
  });
  assert.equal(most, 2);
  assert.deepEqual(
    outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
    [50, 10, 'four', 20, 30],
  );
});
