import pino from 'pino';

/** Structured JSON logs on stderr (stdout carries command output, e.g. a restored stream). */
export const log = pino(
  {
    base: undefined,
    level: process.env.TIDEMARK_LOG_LEVEL ?? 'info',
    redact: ['password', '*.password', 'key', '*.key'],
  },
  pino.destination(2),
);
