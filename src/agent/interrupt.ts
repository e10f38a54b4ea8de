import { constants } from 'node:os';
import { log } from '../log.ts';
import { parseSourceUrl } from '../sources/open.ts';

/**
 * Runs a restore into `targetUrl` so that SIGTERM (Kubernetes deleting the pod, activeDeadlineSeconds)
 * and SIGINT (Ctrl-C) abort it instead of killing the process: the database target then stops its
 * client, drops its scratch database and fails as Interrupted, and the caller reports that and exits
 * non-zero. A second signal exits at once (the next restore drops what is left). Volume restores keep
 * the default behaviour: they have no scratch state to clean up.
 */
export async function interruptible<T>(
  targetUrl: string,
  run: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  let database = false;
  try {
    database = parseSourceUrl(targetUrl).kind === 'database';
  } catch {
    // the restore itself reports the bad URL
  }
  if (!database) return run(undefined);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(128 + constants.signals[signal]);
    log.warn({ event: 'restore-interrupted', signal }, `${signal}: stopping the restore and cleaning up`);
    controller.abort(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
