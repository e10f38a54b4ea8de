import assert from 'node:assert/strict';
import { test } from 'node:test';
import { array, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

test('object() lists non-optional properties as required, in order', () => {
  const schema = object({ a: string(), b: optional(integer()), c: array(string()) });
  assert.deepEqual(schema.json.required, ['a', 'c']);
  assert.deepEqual(Object.keys(schema.json.properties ?? {}), ['a', 'b', 'c']);
});

test('an object with only optional properties has no required list', () => {
  assert.equal(object({ a: optional(string()) }).json.required, undefined);
});

test('rules become x-kubernetes-validations and other options pass through', () => {
  const schema = enumOf(['x', 'y'] as const, {
    default: 'x',
    rules: [{ rule: 'self == oldSelf', message: 'fixed' }],
  });
  assert.deepEqual(schema.json, {
    type: 'string',
    enum: ['x', 'y'],
    default: 'x',
    'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'fixed' }],
  });
});

test('the inferred type makes optional properties optional', () => {
  const schema = object({ name: string(), size: optional(integer()) });
  const value: TypeOf<typeof schema> = { name: 'n' };
  assert.equal(value.size, undefined);
});
