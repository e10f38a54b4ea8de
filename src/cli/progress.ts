import { log } from '../log.ts';
import type { Progress } from '../repository/progress.ts';
import { formatBytes } from '../units.ts';

/** A progress line on a terminal; progress events in the JSON log otherwise. */
export function progressReporter(): (progress: Progress) => void {
  if (process.stderr.isTTY) {
    return (p) => {
      const total = p.bytesTotal ? ` of ${formatBytes(p.bytesTotal)}` : '';
      const eta = p.etaSeconds !== undefined ? `, ETA ${p.etaSeconds}s` : '';
      process.stderr.write(
        `\r${p.operation}: ${formatBytes(p.bytesDone)}${total}, ${p.files} files, ${formatBytes(p.bytesPerSecond)}/s, uploaded ${formatBytes(p.uploadedBytes)}${eta}   `,
      );
    };
  }
  return (p) => log.info({ event: 'progress', ...p }, `${p.operation} progress`);
}
