import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asWatched, instant, newestFirst } from './time.ts';

test('instant reads Dates and RFC 3339 strings alike', () => {
  const at = '2026-12-01T15:40:00Z';
  assert.equal(instant(new Date(at)), instant(at));
  assert.equal(instant(undefined), undefined);
  assert.equal(instant('not a time'), undefined);
});

test('newestFirst orders mixed Date and string timestamps by instant, not by their text', () => {
  // String(Date) starts with the weekday ("Tue …"), which sorts after every "2026-…": a text sort
  // called a pre-restart probe the newest for ever.
  const before = { name: 'before-restart', created: new Date('2026-12-01T10:00:00Z') as Date | string };
  const after = { name: 'after-restart', created: '2026-12-01T11:00:00Z' as Date | string };
  assert.deepEqual(
    newestFirst([before, after], (o) => o.created).map((o) => o.name),
    ['after-restart', 'before-restart'],
  );
});

test('asWatched gives a typed list the shape of a watch event: timestamps as strings', () => {
  const list = { items: [{ metadata: { creationTimestamp: new Date('2026-12-01T10:00:00Z') } }] };
  const watched = asWatched(list);
  assert.equal(typeof watched.items[0]?.metadata.creationTimestamp, 'string');
  assert.equal(instant(watched.items[0]?.metadata.creationTimestamp), Date.parse('2026-12-01T10:00:00Z'));
});
