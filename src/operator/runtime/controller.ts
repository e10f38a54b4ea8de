import type * as k8s from '@kubernetes/client-node';
import { log } from '../../log.ts';
import { keyLogFields } from './log-fields.ts';
import { WorkQueue } from './workqueue.ts';

export interface ReconcileResult {
  /** Look at the object again after this long (schedules, polling a running Job's deadline). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | undefined>;

export interface ControllerHooks {
  onReconcile?: (controller: string, outcome: 'success' | 'error', seconds: number) => void;
  onQueueDepth?: (controller: string, depth: number) => void;
}

/** `namespace/name` of an object. */
export function keyOf(object: k8s.KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/** What a controller reacts to in its own objects: spec changes and deletion, not its own status writes. */
export function specSignature(object: k8s.KubernetesObject): string {
  const { generation, deletionTimestamp, finalizers } = object.metadata ?? {};
  return JSON.stringify([generation, deletionTimestamp, finalizers]);
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * A level-based controller: informers turn watch events into keys on a work queue; workers call
 * `reconcile(key)`, which reads current state and acts. Errors are retried with per-key back-off.
 */
export class Controller {
  readonly queue = new WorkQueue();

  constructor(
    readonly name: string,
    private readonly reconcile: Reconcile,
    private readonly hooks: ControllerHooks = {},
    private readonly workers = 4,
  ) {}

  /**
   * Enqueues the keys `toKeys` maps each added or deleted object to, and each updated one whose
   * `relevant` signature changed (by default any change). Filtering updates matters: without it a
   * controller's own status write comes back as an update and queues the object again.
   */
  watch<T extends k8s.KubernetesObject>(
    informer: k8s.Informer<T>,
    toKeys: (object: T) => string[] = (o) => [keyOf(o)],
    relevant?: (object: T) => string,
  ): void {
    const seen = new Map<string, string>();
    const enqueue = (object: T) => {
      for (const key of toKeys(object)) this.queue.add(key);
    };
    informer.on('add', (object) => {
      if (relevant) seen.set(keyOf(object), relevant(object));
      enqueue(object);
    });
    informer.on('update', (object) => {
      if (relevant) {
        const signature = relevant(object);
        if (seen.get(keyOf(object)) === signature) return;
        seen.set(keyOf(object), signature);
      }
      enqueue(object);
    });
    informer.on('delete', (object) => {
      seen.delete(keyOf(object));
      enqueue(object);
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener('abort', () => this.queue.shutdown(), { once: true });
    await Promise.all(Array.from({ length: this.workers }, () => this.worker()));
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.hooks.onReconcile?.(this.name, 'success', (performance.now() - started) / 1000);
      } catch (error) {
        log.warn(
          {
            event: 'reconcile-error',
            controller: this.name,
            key,
            ...keyLogFields(this.name, key),
            err: (error as Error).message,
          },
          'reconcile failed; retrying',
        );
        this.queue.addRateLimited(key);
        this.hooks.onReconcile?.(this.name, 'error', (performance.now() - started) / 1000);
      } finally {
        this.queue.done(key);
        this.hooks.onQueueDepth?.(this.name, this.queue.length);
      }
    }
  }
}
