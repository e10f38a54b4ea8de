import { hostname } from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import type { BackupPolicy, RestoreRequest } from '../api/kinds.ts';
import { log } from '../log.ts';
import { OperatorMetrics } from '../metrics/operator-metrics.ts';
import { auditController } from './audit/controller.ts';
import { backupController } from './backup/controller.ts';
import { backupPolicyController } from './backuppolicy/controller.ts';
import { backupRepositoryController } from './backuprepository/controller.ts';
import { catalogController } from './catalog/controller.ts';
import { createContext, type OperatorContext } from './context.ts';
import { drillController } from './drill/controller.ts';
import { type EndpointOptions, serveEndpoints } from './endpoints.ts';
import { exportController } from './export/controller.ts';
import type { AgentSettings } from './jobs/agent-job.ts';
import { reportController } from './report/controller.ts';
import { restoreRequestController } from './restorerequest/controller.ts';
import { reuseConnections } from './runtime/connections.ts';
import { LeaderElector } from './runtime/leader.ts';

export interface OperatorOptions {
  settings: AgentSettings;
  leaderElection?: { namespace: string; name?: string; identity?: string; leaseDurationSeconds?: number };
  now?: () => Date;
  /** Serve /metrics, /healthz and /readyz. */
  endpoints?: EndpointOptions;
}

/**
 * Runs the controllers until `signal` aborts. With leader election only the Lease holder runs them;
 * the others wait to take over.
 */
export async function runOperator(
  config: k8s.KubeConfig,
  options: OperatorOptions,
  signal: AbortSignal,
): Promise<void> {
  const kc = reuseConnections(config);
  const metrics = new OperatorMetrics();
  // Ready: a standby waiting for the Lease is; the leader once its caches have synced.
  let notReady: string | undefined = options.leaderElection ? undefined : 'informer caches not synced yet';
  const endpoints = options.endpoints ? await serveEndpoints(options.endpoints, metrics, () => notReady) : undefined;
  const lead = async (leading: AbortSignal) => {
    notReady = 'leading: informer caches not synced yet';
    const ctx = createContext(kc, options.settings, options.now);
    const informers = Object.values(ctx.informers);
    for (const informer of informers) {
      informer.on('error', () =>
        setTimeout(() => void (leading.aborted ? undefined : informer.start().catch(() => undefined)), 1000).unref(),
      );
    }
    const hooks = metrics.controllerHooks;
    const controllers = [
      backupRepositoryController(ctx, hooks),
      backupPolicyController(ctx, hooks),
      backupController(ctx, hooks),
      restoreRequestController(ctx, hooks),
      catalogController(ctx, hooks),
      drillController(ctx, hooks),
      reportController(ctx, hooks),
      exportController(ctx, hooks),
      auditController(ctx, hooks),
    ];
    metrics.lead(controllers);
    const stop = AbortSignal.any([leading, signal]);
    try {
      if (await startedUnlessStopped(informers, stop)) {
        metrics.observeFrom(() => observedObjects(ctx));
        notReady = undefined;
        log.info({ event: 'operator-started', controllers: controllers.map((c) => c.name) }, 'controllers running');
        await Promise.all(controllers.map((c) => c.run(stop)));
      }
    } finally {
      metrics.standBy();
      notReady = undefined;
    }
    await Promise.all(informers.map((i) => i.stop()));
    await ctx.events.flush();
  };
  try {
    await (options.leaderElection ? elect(kc, options.leaderElection, signal, lead) : lead(signal));
  } finally {
    await endpoints?.close();
  }
}

/**
 * Starts the informers: true once their first lists are in, false when `stop` aborts first. SIGTERM or a
 * lost Lease while the caches sync (minutes over a long history) ends the run then, not after the sync.
 */
async function startedUnlessStopped(informers: { start(): Promise<void> }[], stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return false;
  const stopped = new Promise<false>((resolve) => stop.addEventListener('abort', () => resolve(false), { once: true }));
  return Promise.race([Promise.all(informers.map((i) => i.start())).then(() => !stop.aborted), stopped]);
}

function elect(
  kc: k8s.KubeConfig,
  election: NonNullable<OperatorOptions['leaderElection']>,
  signal: AbortSignal,
  lead: (leading: AbortSignal) => Promise<void>,
): Promise<void> {
  const elector = new LeaderElector(kc, {
    namespace: election.namespace,
    name: election.name ?? 'tidemark-operator',
    identity: election.identity ?? `${hostname()}-${process.pid}`,
    ...(election.leaseDurationSeconds ? { leaseDurationSeconds: election.leaseDurationSeconds } : {}),
  });
  signal.addEventListener('abort', () => elector.stop(), { once: true });
  return elector.run(lead);
}

/** What the metrics are computed from: the informer caches, as they are at the scrape. */
function observedObjects(ctx: OperatorContext) {
  const { informers } = ctx;
  return {
    policies: informers.policies.list() as BackupPolicy[],
    backups: ctx.backupsByPolicy,
    restores: informers.restores.list() as RestoreRequest[],
    claims: informers.claims.list(),
    now: ctx.now(),
  };
}
