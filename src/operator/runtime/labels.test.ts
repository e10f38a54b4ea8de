import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { labelValue } from './labels.ts';

const VALID = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe('labelValue', () => {
  test('a name that fits is its own value', () => {
    assert.equal(labelValue('nightly'), 'nightly');
    assert.equal(labelValue('a'.repeat(63)), 'a'.repeat(63));
  });

  test('a long name becomes a valid 63-character value, distinct per name and stable', () => {
    const long = `${'orders-'.repeat(30)}x`;
    const value = labelValue(long);
    assert.ok(value.length <= 63 && VALID.test(value), value);
    assert.equal(labelValue(long), value);
    assert.notEqual(labelValue(`${long}y`), value);
    assert.ok(value.startsWith('orders-orders-'));
  });

  test('dotted subdomain names ending on a separator at the cut stay valid', () => {
    for (let n = 55; n < 80; n++) {
      const value = labelValue(`${'a.'.repeat(n)}b`);
      assert.ok(value.length <= 63 && VALID.test(value), value);
    }
  });
});
