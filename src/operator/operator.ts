import { hostname } from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import { log } from '../log.ts';
import { backupController } from './backup/controller.ts';
import type { AgentSettings } from './backup/job.ts';
import { backupPolicyController } from './backuppolicy/controller.ts';
import { backupRepositoryController } from './backuprepository/controller.ts';
import { catalogController } from './catalog/controller.ts';
import { createContext } from './context.ts';
import { restoreRequestController } from './restorerequest/controller.ts';
import { reuseConnections } from './runtime/connections.ts';
import { LeaderElector } from './runtime/leader.ts';

export interface OperatorOptions {
  settings: AgentSettings;
  leaderElection?: { namespace: string; name?: string; identity?: string; leaseDurationSeconds?: number };
  now?: () => Date;
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
  const lead = async (leading: AbortSignal) => {
    const ctx = createContext(kc, options.settings, options.now);
    const informers = Object.values(ctx.informers);
    for (const informer of informers) {
      informer.on('error', () =>
        setTimeout(() => void (leading.aborted ? undefined : informer.start().catch(() => undefined)), 1000).unref(),
      );
    }
    const controllers = [
      backupRepositoryController(ctx),
      backupPolicyController(ctx),
      backupController(ctx),
      restoreRequestController(ctx),
      catalogController(ctx),
    ];
    await Promise.all(informers.map((i) => i.start()));
    log.info({ event: 'operator-started', controllers: controllers.map((c) => c.name) }, 'controllers running');
    const stop = new AbortController();
    const abort = () => stop.abort();
    leading.addEventListener('abort', abort, { once: true });
    signal.addEventListener('abort', abort, { once: true });
    await Promise.all(controllers.map((c) => c.run(stop.signal)));
    await Promise.all(informers.map((i) => i.stop()));
    await ctx.events.flush();
  };
  if (!options.leaderElection) return lead(signal);
  const elector = new LeaderElector(kc, {
    namespace: options.leaderElection.namespace,
    name: options.leaderElection.name ?? 'tidemark-operator',
    identity: options.leaderElection.identity ?? `${hostname()}-${process.pid}`,
    ...(options.leaderElection.leaseDurationSeconds
      ? { leaseDurationSeconds: options.leaderElection.leaseDurationSeconds }
      : {}),
  });
  signal.addEventListener('abort', () => elector.stop(), { once: true });
  await elector.run(lead);
}
