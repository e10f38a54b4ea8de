import { writeFileSync } from 'node:fs';
import type { ObjectCount, Skipped } from '../sources/source.ts';

/** Kubernetes keeps at most 4096 bytes of a termination message. */
export const TERMINATION_MESSAGE_LIMIT = 4096;

/** The parts of a result (any task's, or a failure) that can grow, and are cut to fit the message. */
interface Shortenable {
  ok: boolean;
  objects?: ObjectCount[];
  /** Set when `objects` was cut. */
  objectsTruncated?: boolean;
  skipped?: Skipped[];
  warnings?: string[];
  error?: { code: string; message: string };
}

/** Serialises a result into at most `limit` bytes, dropping skipped entries and then objects from the end. */
export function encodeResult<R extends Shortenable>(result: R, limit = TERMINATION_MESSAGE_LIMIT): string {
  let current: Shortenable = { ...result };
  let text = JSON.stringify(current);
  while (Buffer.byteLength(text) > limit) {
    if (current.skipped?.length) current = { ...current, skipped: current.skipped.slice(0, -1) };
    else if (current.warnings?.some((w) => w.length > 300))
      current = { ...current, warnings: current.warnings.map((w) => (w.length > 300 ? `${w.slice(0, 297)}...` : w)) };
    else if (current.objects?.length)
      current = { ...current, objects: current.objects.slice(0, -1), objectsTruncated: true };
    else if (current.error)
      current = { ...current, error: { ...current.error, message: current.error.message.slice(0, limit / 2) } };
    else break;
    text = JSON.stringify(current);
  }
  return text;
}

export function writeResult(path: string, result: Shortenable): void {
  writeFileSync(path, encodeResult(result));
}
