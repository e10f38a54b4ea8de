import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canAcquire, microTime } from './leader.ts';

const now = new Date('2026-11-23T12:00:30Z');

test('a free lease, or one we hold, can be taken', () => {
  assert.equal(canAcquire(undefined, 'a', now), true);
  assert.equal(canAcquire({ holderIdentity: '' }, 'a', now), true);
  assert.equal(canAcquire({ holderIdentity: 'a', renewTime: new Date(now) }, 'a', now), true);
});

test("another holder's lease is taken only after it expired", () => {
  const renewed = (secondsAgo: number) => microTime(new Date(now.getTime() - secondsAgo * 1000)) as unknown as Date;
  assert.equal(canAcquire({ holderIdentity: 'b', renewTime: renewed(10), leaseDurationSeconds: 15 }, 'a', now), false);
  assert.equal(canAcquire({ holderIdentity: 'b', renewTime: renewed(16), leaseDurationSeconds: 15 }, 'a', now), true);
});

test('MicroTime has six fractional digits', () => {
  assert.equal(microTime(new Date('2026-11-23T12:00:30.123Z')), '2026-11-23T12:00:30.123000Z');
});
