import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncWhileFast } from './sync-while-fast.ts';

function gate() {
  let clock = 0;
  const sync = new SyncWhileFast(0.25, () => clock);
  const call = (ms: number, calls = 1, fail = false) =>
    sync.time(calls, () => {
      clock += ms;
      if (fail) throw new Error('EACCES');
    });
  return { sync, call };
}

test('synchronous calls go on while most are fast, a few stalls (preemption) included', () => {
  const { sync, call } = gate();
  for (let i = 0; i < 1000; i++) call(i % 10 === 0 ? 50 : 0.01);
  assert.equal(sync.enabled, true);
});

test('they stop for good once most calls of a window are slow (blocking storage)', () => {
  const { sync, call } = gate();
  for (let i = 0; i < 128; i++) call(0.01);
  for (let i = 0; i < 64; i++) call(i % 3 === 0 ? 0.01 : 2);
  assert.equal(sync.enabled, false);
  for (let i = 0; i < 1000; i++) call(0.01);
  assert.equal(sync.enabled, false);
});

test('a batch counts as its calls, and a failing one is timed too, its error passing through', () => {
  const { sync, call } = gate();
  for (let i = 0; i < 64; i++) call(8, 64); // 0.125 ms a call
  assert.equal(sync.enabled, true);
  for (let i = 0; i < 64; i++) assert.throws(() => call(1, 1, true), /EACCES/);
  assert.equal(sync.enabled, false);
});
