import { parseDuration } from '../api/duration.ts';
import { TidemarkError } from '../errors.ts';

/**
 * When a snapshot written at `writtenAt` leaves a repository's immutability period, or undefined when
 * it is already out of it (or the repository has none). Tidemark enforces the period itself: no
 * operator path and no agent forget removes a snapshot before this time.
 */
export function immutableUntil(writtenAt: Date | string, period: string | undefined, now: Date): Date | undefined {
  if (!period) return undefined;
  const written = typeof writtenAt === 'string' ? Date.parse(writtenAt) : writtenAt.getTime();
  // An unknown write time is treated as "just written": never forget what cannot be dated.
  const until = new Date((Number.isNaN(written) ? now.getTime() : written) + parseDuration(period));
  return until > now ? until : undefined;
}

/** The refusal of a forget inside the period, with what, where and until when. */
export function immutableError(snapshot: string, where: string, period: string, until: Date): TidemarkError {
  return new TidemarkError(
    'Immutable',
    `snapshot ${snapshot.slice(0, 12)} in ${where} is immutable until ${until.toISOString()} (immutability.period ${period}); not forgotten`,
  );
}
