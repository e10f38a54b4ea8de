// "What limits us": for each missed target, what the measurements say about why.
import type { ProfileSummary } from '../profile.ts';
import { parseKey, type RequestCounts } from './apiserver.ts';

export interface Observed {
  policies: number;
  /** The operator's non-watch requests over the steady-state window. */
  steady: RequestCounts;
  steadyMinutes: number;
  steadyCpuS: number;
  /** The operator's CPU during the initial sync, and the sync's wall time. */
  sync: { cpuS: number; wallS: number };
  /** The operator's non-watch requests per minute while the lag was measured. */
  lagPhasePerMin: number;
  missed: { sync: boolean; rss: boolean; steady: boolean; lag: boolean; scrape: boolean };
  rssMiB: { afterSync: number; afterSteady: number; peak: number; cliAlone: number };
  lagP50S: number;
  profile?: ProfileSummary;
}

const count = (counts: RequestCounts, verb: string, resource: string) =>
  [...counts].filter(([key]) => {
    const k = parseKey(key);
    return k.verb === verb && `${k.resource}${k.subresource ? `/${k.subresource}` : ''}` === resource;
  })[0]?.[1] ?? 0;

export function limitsOf(o: Observed): string[] {
  const lines: string[] = [];
  const writes = count(o.steady, 'PUT', 'backuppolicies/status') / o.steadyMinutes;
  if (o.missed.steady) {
    const [top, n] = [...o.steady].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
    const k = parseKey(top);
    lines.push(
      `Steady state: the most frequent request is ${k.verb} ${k.resource}${k.subresource ? `/${k.subresource}` : ''} (${(n / o.steadyMinutes).toFixed(1)} per minute; the table above has the rest; ${writes.toFixed(0)} policy status writes per minute); the operator spent ${o.steadyCpuS.toFixed(0)} CPU s in ${o.steadyMinutes} min.`,
    );
  }
  if (o.missed.lag)
    lines.push(
      `Schedule lag (p50 ${o.lagP50S.toFixed(1)} s): a due policy's key waits in the same work queue (4 workers) as every other pass; the operator made ${o.lagPhasePerMin.toFixed(0)} requests per minute while the lag was measured.${o.missed.steady ? ' The steady-state writes above keep that queue busy.' : ''}`,
    );
  if (o.missed.sync)
    lines.push(
      `Initial sync: the operator used ${o.sync.cpuS.toFixed(0)} CPU s of its ${o.sync.wallS.toFixed(0)} s; the rest is the API server serving the LIST of every Backup (docs/decisions.md, "The operator with history")${o.profile ? "; the profile below shows where the operator's share goes" : "; --profile shows where the operator's share goes"}.`,
    );
  if (o.missed.scrape)
    lines.push(
      '`/metrics`: a scrape recomputes the object metrics of the policies whose objects changed since the last one (src/metrics/samples.ts, SamplesMemo) and prom-client renders every series on the event loop; the first scrape after the sync computes them all; --profile shows which dominates.',
    );
  if (o.missed.rss || o.rssMiB.peak > o.rssMiB.afterSync * 1.3)
    lines.push(
      `Memory: peak ${o.rssMiB.afterSync.toFixed(0)} MiB by the end of the sync, ${o.rssMiB.afterSteady.toFixed(0)} MiB resident after the steady-state window, peak ${o.rssMiB.peak.toFixed(0)} MiB over the run. Loading the CLI alone (\`tidemark --version\`, same build) peaks at ${o.rssMiB.cliAlone.toFixed(0)} MiB.`,
    );
  if (o.profile) {
    const top = o.profile.hotspots
      .slice(0, 4)
      .map((h) => `\`${h.name}\` ${(h.share * 100).toFixed(0)}%`)
      .join(', ');
    lines.push(`Hottest functions by self time (main thread): ${top}.`);
  }
  return lines;
}
