import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conditionStatus, newlyFalse, setCondition } from './conditions.ts';

const t0 = new Date('2026-11-23T10:00:00Z');
const t1 = new Date('2026-11-23T11:00:00Z');

test('lastTransitionTime moves only when the status changes', () => {
  const first = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ok', message: 'fine' }, 1, t0);
  const same = setCondition(first, { type: 'Ready', status: 'True', reason: 'StillOk', message: 'still' }, 2, t1);
  assert.equal(same[0]?.lastTransitionTime, t0.toISOString());
  assert.equal(same[0]?.reason, 'StillOk');
  assert.equal(same[0]?.observedGeneration, 2);
  const changed = setCondition(same, { type: 'Ready', status: 'False', reason: 'Broken', message: 'no' }, 2, t1);
  assert.equal(changed[0]?.lastTransitionTime, t1.toISOString());
  assert.equal(conditionStatus(changed, 'Ready'), 'False');
});

test('conditions are keyed by type and kept sorted', () => {
  let list = setCondition(undefined, { type: 'RPOMet', status: 'True', reason: 'A', message: '' }, 1, t0);
  list = setCondition(list, { type: 'Ready', status: 'True', reason: 'B', message: '' }, 1, t0);
  list = setCondition(list, { type: 'RPOMet', status: 'False', reason: 'C', message: '' }, 1, t0);
  assert.deepEqual(
    list.map((c) => [c.type, c.status]),
    [
      ['Ready', 'True'],
      ['RPOMet', 'False'],
    ],
  );
});

test('newlyFalse: a condition that turned False, or changed why it is False, once; not one that stays as it was', () => {
  const ready = (status: 'True' | 'False', reason: string, message = '') =>
    setCondition(undefined, { type: 'Ready', status, reason, message }, 1, t0);
  // As the API server returns it: keys sorted, which must not matter.
  const fromServer = ready('False', 'RegionNotAllowed', 'replica in us-east-1').map((c) =>
    Object.fromEntries(Object.entries(c).sort(([a], [b]) => a.localeCompare(b))),
  ) as typeof fromScratch;
  const fromScratch = ready('False', 'RegionNotAllowed', 'replica in us-east-1');
  assert.deepEqual(
    newlyFalse(ready('True', 'Scheduled'), fromScratch, ['Ready']).map((c) => c.reason),
    ['RegionNotAllowed'],
  );
  assert.deepEqual(newlyFalse(fromServer, fromScratch, ['Ready']), []);
  assert.deepEqual(
    newlyFalse(fromServer, ready('False', 'RepositoryNotFound', 'no primary'), ['Ready']).map((c) => c.reason),
    ['RepositoryNotFound'],
  );
  assert.deepEqual(newlyFalse(undefined, fromScratch, ['RPOMet']), [], 'only the types asked for');
});
