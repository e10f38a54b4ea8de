import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Clock, WorkQueue } from './workqueue.ts';

function fakeClock() {
  let now = 0;
  const timers: { at: number; callback: () => void; cancelled: boolean }[] = [];
  const clock: Clock = {
    now: () => now,
    setTimeout: (callback, ms) => {
      const timer = { at: now + ms, callback, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((t) => !t.cancelled && t.at <= now)) {
      t.cancelled = true;
      t.callback();
    }
  };
  return { clock, advance };
}

test('a key added several times is queued once', async () => {
  const queue = new WorkQueue();
  queue.add('a');
  queue.add('a');
  queue.add('b');
  assert.equal(queue.length, 2);
  assert.equal(await queue.get(), 'a');
  assert.equal(await queue.get(), 'b');
});

test('a key added while being processed is processed again after done, never twice at once', async () => {
  const queue = new WorkQueue();
  queue.add('a');
  const key = await queue.get();
  queue.add('a');
  assert.equal(queue.length, 0, 'not handed out while processing');
  queue.done(key as string);
  assert.equal(queue.length, 1);
});

test('failures back off exponentially per key; forget resets', async () => {
  const { clock, advance } = fakeClock();
  const queue = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 1000 });
  queue.addRateLimited('a');
  advance(99);
  assert.equal(queue.length, 0);
  advance(1);
  assert.equal(queue.length, 1);
  queue.done((await queue.get()) as string);
  queue.addRateLimited('a');
  advance(199);
  assert.equal(queue.length, 0, 'second failure waits 200 ms');
  advance(1);
  assert.equal(queue.length, 1);
  queue.done((await queue.get()) as string);
  queue.forget('a');
  queue.addRateLimited('a');
  advance(100);
  assert.equal(queue.length, 1, 'after forget the back-off starts again at the base delay');
});

test('addAfter keeps the earliest pending time', () => {
  const { clock, advance } = fakeClock();
  const queue = new WorkQueue({ clock });
  queue.addAfter('a', 1000);
  queue.addAfter('a', 100);
  queue.addAfter('a', 5000);
  advance(100);
  assert.equal(queue.length, 1);
});

test('shutdown releases waiting workers', async () => {
  const queue = new WorkQueue();
  const waiting = queue.get();
  queue.shutdown();
  assert.equal(await waiting, undefined);
});

test('after shutdown no key is handed out, even with keys queued', async () => {
  const queue = new WorkQueue();
  queue.add('acme/a');
  queue.add('acme/b');
  queue.shutdown();
  assert.equal(await queue.get(), undefined);
});
