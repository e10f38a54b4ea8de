/**
 * Durations as written in manifests (`90s`, `1h30m`, `14d`, `2w`) and as shown in status (`achievedRTO: 4m12s`).
 * The grammar is exactly the CRD's DURATION_PATTERN, so whatever the API server accepts parses here.
 */
import { TidemarkError } from '../errors.ts';
import { DURATION_PATTERN } from './common.ts';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const WEEK_MS = 7 * DAY_MS;

const UNIT_MS: Record<string, number> = { w: WEEK_MS, d: DAY_MS, h: HOUR_MS, m: MINUTE_MS, s: SECOND_MS };
const WHOLE = new RegExp(DURATION_PATTERN);
const PART = /([0-9]+)([wdhms])/g;

/**
 * Parses a duration such as `90s`, `1h30m`, `14d` or `2w` into milliseconds. Units: w, d, h, m, s (lowercase,
 * any order, as the CRD pattern allows). A zero duration is refused unless `allowZero` is set, because every
 * duration field of the API must be longer than zero.
 * @throws TidemarkError InvalidArgument on anything else.
 */
export function parseDuration(text: string, options: { allowZero?: boolean } = {}): number {
  if (typeof text !== 'string' || !WHOLE.test(text)) {
    throw new TidemarkError(
      'InvalidArgument',
      `invalid duration ${JSON.stringify(text)}: expected one or more <number><unit> with units w, d, h, m, s, e.g. 90s, 1h30m, 14d or 2w`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * (UNIT_MS[unit as string] as number);
  if (!Number.isSafeInteger(total)) {
    throw new TidemarkError('InvalidArgument', `invalid duration ${JSON.stringify(text)}: too long`);
  }
  if (total === 0 && !options.allowZero) {
    throw new TidemarkError('InvalidArgument', `invalid duration ${JSON.stringify(text)}: must be longer than zero`);
  }
  return total;
}

const FORMAT_UNITS: [string, number][] = [
  ['d', DAY_MS],
  ['h', HOUR_MS],
  ['m', MINUTE_MS],
  ['s', SECOND_MS],
];

/**
 * Formats milliseconds for status and CLI output, kubectl-age style: the largest unit and the next `units - 1`
 * smaller ones, truncated, zero parts left out (`4_332_000` → `1h12m`, `90_061_000` → `1d1h`, `90_000` → `1m30s`).
 * Units are d, h, m, s (no weeks: `14d` reads better than `2w` for an age). Below one second, and for negative
 * values (clock skew), the result is `0s`. The output parses back with parseDuration (`0s` needs allowZero).
 * @throws TidemarkError InvalidArgument for NaN or infinite values.
 */
/** A duration field of an admitted object in seconds; undefined when unset or (never past the CRD's pattern) malformed. */
export function durationSeconds(text: string | undefined): number | undefined {
  if (!text) return undefined;
  try {
    return parseDuration(text) / SECOND_MS;
  } catch {
    return undefined;
  }
}

export function formatDuration(ms: number, options: { units?: number } = {}): string {
  if (!Number.isFinite(ms)) throw new TidemarkError('InvalidArgument', `cannot format duration ${ms}`);
  const units = Math.max(1, options.units ?? 2);
  let rest = Math.max(0, Math.floor(ms));
  let out = '';
  let used = 0;
  for (const [unit, size] of FORMAT_UNITS) {
    if (used === units) break;
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (used > 0) used++;
    if (amount > 0) {
      out += `${amount}${unit}`;
      if (used === 0) used = 1;
    }
  }
  return out || '0s';
}
