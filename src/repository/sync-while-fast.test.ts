import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncWhileFast } from './sync-while-fast.ts';

function gate() {
  let clock = 0;
  const sync = new SyncWhileFast(0.25, () => clock);
  /** One decision: a timed synchronous call when the gate says so; whether it was made synchronously. */
  const call = (ms: number, calls = 1, fail = false): boolean => {
    if (!sync.useSync()) return false;
    sync.time(calls, () => {
      clock += ms;
      if (fail) throw new Error('EACCES');
    });
    return true;
  };
  const synchronous = (count: number, ms: number) => {
    let made = 0;
    for (let i = 0; i < count; i++) if (call(ms)) made++;
    return made;
  };
  return { sync, call, synchronous };
}

test('synchronous calls go on while most are fast, a few stalls (preemption) included', () => {
  const { call } = gate();
  let made = 0;
  for (let i = 0; i < 1000; i++) if (call(i % 10 === 0 ? 50 : 0.01)) made++;
  assert.equal(made, 1000);
});

test('once most calls of a window are slow (blocking storage) only one in 64 is still made synchronously', () => {
  const { call, synchronous } = gate();
  for (let i = 0; i < 128; i++) call(0.01);
  for (let i = 0; i < 64; i++) call(i % 3 === 0 ? 0.01 : 2);
  assert.equal(synchronous(64 * 64, 2), 64, 'slow probes keep the calls asynchronous');
  assert.equal(synchronous(640, 2), 10);
});

test('after a stall, a window of fast probes makes the calls synchronous again', () => {
  const { call, synchronous } = gate();
  for (let i = 0; i < 64; i++) call(2);
  assert.equal(synchronous(64, 0.01), 1, 'slow: one probe in 64');
  assert.equal(synchronous(63 * 64, 0.01), 63, 'probes until a window of them is full');
  assert.equal(synchronous(100, 0.01), 100, 'fast again: every call synchronous');
});

test('a batch counts as its calls, and a failing one is timed too, its error passing through', () => {
  const { call, synchronous } = gate();
  for (let i = 0; i < 64; i++) call(8, 64); // 0.125 ms a call
  assert.equal(synchronous(10, 0.01), 10, 'a batch of fast calls is fast');
  for (let i = 0; i < 54; i++) assert.throws(() => call(1, 1, true), /EACCES/);
  assert.equal(synchronous(64, 0.01), 1, 'slow failing calls count');
});
