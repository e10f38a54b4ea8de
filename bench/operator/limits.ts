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
  missed: { sync: boolean; rss: boolean; steady: boolean; lag: boolean };
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
      `Steady state: ${writes.toFixed(0)} policy status writes per minute (PUT backuppolicies/status), ${writesPerPolicy.toFixed(2)} per policy per minute (one every ${(60 / writesPerPolicy).toFixed(0)} s), each after a fresh GET; the operator spent ${o.steadyCpuS.toFixed(0)} CPU s in ${o.steadyMinutes} min.`,
    );
    if (writesPerPolicy > 0.25)
      lines.push(
        "That is more often than the policy controller's 5-minute requeue explains: its own status write comes back as a watch update that queues the policy again, and the next pass writes again because the status holds clock-derived values (`currentRPOSeconds`, `currentRPO`) that change every second. Once the queue takes longer than a second to cycle (a few hundred policies on 2 workers), every pass writes: the loop never settles.",
      );
  }
  if (o.missed.lag)
    lines.push(
      `Schedule lag (p50 ${o.lagP50S.toFixed(1)} s): a due policy's key waits in the same work queue (2 workers) as every other pass; the operator made ${o.lagPhasePerMin.toFixed(0)} requests per minute while the lag was measured.${o.missed.steady ? ' The steady-state loop above keeps that queue full.' : ''}`,
    );
  if (o.missed.sync) lines.push('Initial sync: see the profile below for where the time goes.');
  if (o.missed.rss || o.rssMiB.peak > o.rssMiB.afterSync * 1.3)
    lines.push(
      `Memory: peak ${o.rssMiB.afterSync.toFixed(0)} MiB by the end of the sync, ${o.rssMiB.afterSteady.toFixed(0)} MiB resident after the steady-state window, peak ${o.rssMiB.peak.toFixed(0)} MiB over the run. Loading the CLI alone (\`tidemark --version\`, same build) peaks at ${o.rssMiB.cliAlone.toFixed(0)} MiB: it imports every command's modules (@kubernetes/client-node, the storage SDKs) before running one.`,
    );
  if (o.profile) {
    const top = o.profile.hotspots
      .slice(0, 4)
      .map((h) => `\`${h.name}\` ${(h.share * 100).toFixed(0)}%`)
      .join(', ');
    lines.push(`Hottest functions by self time (main thread): ${top}.`);
    const tls = o.profile.hotspots
      .filter((h) => /_tls_|tls\/secure-context|SecureContext/.test(h.name))
      .reduce((sum, h) => sum + h.share, 0);
    if (tls > 0.15)
      lines.push(
        `${(tls * 100).toFixed(0)}% of the busy main thread (among the top functions alone) is TLS connection set-up: @kubernetes/client-node 1.x makes a new https.Agent for every request (\`KubeConfig.applySecurityAuthentication\` → \`createAgent\`), so no connection is reused and every request pays a handshake and a new SecureContext (parsing the CA).`,
      );
  }
  return lines;
}
