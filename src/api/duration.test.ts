import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCode } from '../errors.ts';
import { formatDuration, parseDuration } from './duration.ts';

describe('parseDuration', () => {
  const cases: [string, number][] = [
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['14d', 14 * 86_400_000],
    ['2w', 14 * 86_400_000],
    ['1d12h', 36 * 3_600_000],
    ['30m1h', 5_400_000], // any order, as the CRD pattern allows
    ['1h1h', 7_200_000],
    ['007s', 7_000],
  ];
  for (const [text, ms] of cases) {
    it(`${text} → ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const bad = ['', '1', 'h', '1x', '1H', '1.5h', '-1h', ' 1h', '1h ', '1 h', '1h30', 'P1D', '99999999999999999999w'];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)} with InvalidArgument`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: unknown) => isCode(error, 'InvalidArgument'),
      );
    });
  }

  it('rejects zero unless allowed', () => {
    assert.throws(
      () => parseDuration('0s'),
      (error: unknown) => isCode(error, 'InvalidArgument') && /longer than zero/.test(String(error)),
    );
    assert.throws(
      () => parseDuration('0h0m'),
      (error: unknown) => isCode(error, 'InvalidArgument'),
    );
    assert.equal(parseDuration('0s', { allowZero: true }), 0);
  });
});

describe('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [999, '0s'],
    [-5_000, '0s'],
    [45_000, '45s'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [3_601_000, '1h'], // two largest units: h and m; the seconds are dropped
    [4_332_000, '1h12m'],
    [4_332_999, '1h12m'],
    [90_061_000, '1d1h'],
    [14 * 86_400_000, '14d'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} ms → ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it('shows more units on request', () => {
    assert.equal(formatDuration(90_061_000, { units: 4 }), '1d1h1m1s');
    assert.equal(formatDuration(4_332_000, { units: 1 }), '1h');
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1_000, 90_000, 5_400_000, 90_061_000]) {
      assert.equal(parseDuration(formatDuration(ms, { units: 4 })), ms);
    }
  });

  it('refuses NaN and infinity', () => {
    assert.throws(
      () => formatDuration(Number.NaN),
      (error: unknown) => isCode(error, 'InvalidArgument'),
    );
    assert.throws(
      () => formatDuration(Number.POSITIVE_INFINITY),
      (error: unknown) => isCode(error, 'InvalidArgument'),
    );
  });
});
