import pino from 'pino';

/**
 * Fields every line carries: an agent Job gets the namespace, policy, source, backup or restore it
 * works for in TIDEMARK_LOG_FIELDS (a JSON object), so its lines filter like the operator's.
 */
export function logFields(json: string | undefined): Record<string, string> | undefined {
  if (!json) return undefined;
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string'));
  } catch {
    return undefined;
  }
}

/**
 * Structured JSON logs on stderr (stdout carries command output, e.g. a restored stream), stamped
 * `"time":"2026-03-30T01:00:00.123Z"` (ISO 8601, UTC) so people and log stores read the same time.
 */
export const log = pino(
  {
    base: logFields(process.env.TIDEMARK_LOG_FIELDS),
    timestamp: pino.stdTimeFunctions.isoTime,
    level: process.env.TIDEMARK_LOG_LEVEL ?? 'info',
    redact: ['password', '*.password', 'key', '*.key'],
  },
  pino.destination(2),
);
