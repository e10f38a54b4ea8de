// "What limits us": for each missed target, what the measurements say about why.
import type { ProfileSummary } from '../profile.ts';
import { parseKey, type RequestCounts } from './apiserver.ts';

export interface Observed {
  policies: number;
  /** The operator's non-watch requests over the steady-state window. */
  steady: RequestCounts;
  steadyMinutes: number;
  steadyCpuS: number;
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
  const writesPerPolicy = writes / o.policies;
  if (o.missed.steady) {
    lines.push(
      `Steady state: ${writes.toFixed(0)} policy status writes per minute (PUT backuppolicies/status), ${writesPerPolicy.toFixed(2)} per policy per minute (one every ${(60 / writesPerPolicy).toFixed(0)} s); the operator spent ${o.steadyCpuS.toFixed(0)} CPU s in ${o.steadyMinutes} min.`,
    );
  }
  if (o.missed.lag)
    lines.push(
      `Schedule lag (p50 ${o.lagP50S.toFixed(1)} s): a due policy's key waits in the same work queue (4 workers) as every other pass; the operator made ${o.lagPhasePerMin.toFixed(0)} requests per minute while the lag was measured.${o.missed.steady ? ' The steady-state writes above keep that queue busy.' : ''}`,
    );
  if (o.missed.sync) lines.push('Initial sync: see the profile below for where the time goes.');
  if (o.missed.scrape)
    lines.push(
      '`/metrics`: each scrape computes every object metric from the caches on the event loop (src/metrics/samples.ts) and prom-client renders the text; run with --profile to see which dominates.',
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
