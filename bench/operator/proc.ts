// What /proc says about one process: peak and current resident set size, CPU time.
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface ProcessSample {
  /** Peak resident set size so far (VmHWM), MiB. */
  peakRssMiB: number;
  /** Current resident set size (VmRSS), MiB. */
  rssMiB: number;
  /** User + system CPU seconds so far. */
  cpuS: number;
}

export function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { peakRssMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024, cpuS: ticks / CLOCK_TICKS };
}
