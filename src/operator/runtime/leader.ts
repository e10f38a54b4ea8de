import * as k8s from '@kubernetes/client-node';
import { log } from '../../log.ts';

/**
 * Leader election on a coordination.k8s.io Lease (client-go's leaderelection, reduced): one
 * replica holds the lease and renews it every `retryPeriodMs`; the others take it over once it has
 * not been renewed for `leaseDurationSeconds`. A leader that cannot renew for `renewDeadlineMs`
 * stops leading (its work is aborted), so two replicas never act at once for longer than that.
 */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** The lease's decision, pure: may `identity` take or keep the lease at `now`? */
export function canAcquire(spec: k8s.V1LeaseSpec | undefined, identity: string, now: Date): boolean {
  if (!spec?.holderIdentity || spec.holderIdentity === identity) return true;
  const renewed = spec.renewTime ? Date.parse(String(spec.renewTime)) : 0;
  return now.getTime() > renewed + (spec.leaseDurationSeconds ?? 15) * 1000;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private stopped = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: LeaderElectionOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    // client-go's defaults (15 s, 10 s, 2 s), scaled down for shorter leases.
    this.renewDeadlineMs = options.renewDeadlineMs ?? Math.min(10_000, (this.leaseDurationSeconds * 1000 * 2) / 3);
    this.retryPeriodMs = options.retryPeriodMs ?? Math.min(2_000, (this.leaseDurationSeconds * 1000) / 4);
  }

  /**
   * Waits to become leader, runs `lead` with a signal that aborts when leadership is lost, and
   * resolves when `lead` ends or `stop` is called. Leadership is released on the way out.
   */
  async run(lead: (signal: AbortSignal) => Promise<void>): Promise<void> {
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await sleep(this.retryPeriodMs);
    if (this.stopped) return;
    log.info({ event: 'leader-elected', identity: this.options.identity, lease: this.options.name }, 'became leader');
    const controller = new AbortController();
    const renewing = this.renewLoop(controller);
    try {
      await lead(controller.signal);
    } finally {
      controller.abort();
      await renewing;
      await this.release();
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async renewLoop(controller: AbortController): Promise<void> {
    let lastRenew = Date.now();
    while (!controller.signal.aborted && !this.stopped) {
      await sleep(this.retryPeriodMs);
      if (controller.signal.aborted) return;
      if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        log.error(
          { event: 'leader-lost', identity: this.options.identity },
          'lost leadership: could not renew the lease',
        );
        controller.abort();
        return;
      }
    }
    controller.abort();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace }).catch((error: { code?: number }) => {
        if (error.code === 404) return undefined;
        throw error;
      });
      if (!lease) {
        await this.api.createNamespacedLease({ namespace, body: this.leaseBody(undefined, now) });
        return true;
      }
      if (!canAcquire(lease.spec, identity, now)) return false;
      await this.api.replaceNamespacedLease({ name, namespace, body: this.leaseBody(lease, now) });
      return true;
    } catch (error) {
      log.warn({ event: 'lease-error', err: (error as Error).message }, 'could not acquire or renew the lease');
      return false;
    }
  }

  private leaseBody(current: k8s.V1Lease | undefined, now: Date): k8s.V1Lease {
    const { namespace, name, identity } = this.options;
    const takingOver = current?.spec?.holderIdentity !== identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        renewTime: microTime(now) as unknown as Date,
        acquireTime: (takingOver ? microTime(now) : current?.spec?.acquireTime) as unknown as Date,
        leaseTransitions: (current?.spec?.leaseTransitions ?? 0) + (takingOver && current ? 1 : 0),
      },
    };
  }

  /** Gives the lease up so another replica takes over at once rather than after the lease duration. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
    } catch {
      // best effort: the lease expires on its own
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
