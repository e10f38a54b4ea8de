/**
 * Errors with a stable code to branch on (never the message text), whether a retry may help, and the
 * context each boundary adds ("reading pack 3fa2… from s3://bucket/prefix").
 */
export type ErrorCode =
  | 'NotFound'
  | 'AccessDenied'
  | 'ContainerMissing'
  | 'Transient'
  | 'WrongKey'
  | 'Corrupt'
  | 'Locked'
  /** A snapshot inside its repository's immutability period cannot be forgotten. */
  | 'Immutable'
  | 'InvalidArgument'
  | 'SourceUnavailable'
  | 'Unsupported'
  /** What was restored differs from what the backup recorded (a restore drill's check). */
  | 'VerificationFailed'
  /** The operator's, never the agent's: a Job's pod could not start (missing Secret or key, image not pullable). */
  | 'PodCannotStart'
  /** Stopped by a signal (SIGTERM from Kubernetes, Ctrl-C) before it finished. */
  | 'Interrupted'
  | 'Internal';

export class TidemarkError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TidemarkError';
    this.code = code;
    this.retryable = options.retryable ?? code === 'Transient';
  }
}

/** Wraps any error with what was being done, keeping the code of a TidemarkError underneath. */
export function withContext(context: string, error: unknown): TidemarkError {
  if (error instanceof TidemarkError)
    return new TidemarkError(error.code, `${context}: ${error.message}`, { cause: error, retryable: error.retryable });
  const message = error instanceof Error ? error.message : String(error);
  return new TidemarkError('Internal', `${context}: ${message}`, { cause: error });
}

export function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof TidemarkError && error.code === code;
}

/**
 * Runs `work`, then `cleanup` (releasing a lock, closing a file) whatever happened, like try/finally, except that
 * a cleanup failing after a failed `work` never replaces the work's error: the first real failure is what ends
 * the command, and the cleanup's failure is passed to `onMaskedFailure` (a warning). After a successful `work`, a
 * failing cleanup is the error.
 */
export async function withCleanup<T>(
  work: () => Promise<T>,
  cleanup: () => Promise<unknown>,
  onMaskedFailure: (cleanupError: unknown, workError: unknown) => void,
): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await cleanup().catch((cleanupError: unknown) => onMaskedFailure(cleanupError, error));
    throw error;
  }
  await cleanup();
  return result;
}
