import * as k8s from '@kubernetes/client-node';
import { log } from '../../log.ts';
import { type LogFields, objectLogFields } from './log-fields.ts';

/** An object an event is about. */
export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string };
  /** Read for the log fields (a Backup's policy and source). */
  spec?: unknown;
  status?: unknown;
}

export type EventType = 'Normal' | 'Warning';

const MAX_BACKLOG = 10_000;

/**
 * R-AUDIT: every user-visible action is a Kubernetes Event on the object (what `kubectl describe`
 * shows) and a structured log line. Reasons are CamelCase. Messages never hold secrets.
 */
export class EventRecorder {
  private readonly core: k8s.CoreV1Api;

  constructor(
    kc: k8s.KubeConfig,
    private readonly component = 'tidemark-operator',
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Events are posted one at a time, in order, behind the reconcilers' own requests (client-go does the same). */
  private queue: Promise<void> = Promise.resolve();
  private backlog = 0;

  /**
   * Logs the event at once and posts it in the background: a reconcile never waits for an Event. A
   * failed post is logged, not retried; beyond MAX_BACKLOG waiting events new ones are only logged.
   * `fields` adds what the message names besides the target (e.g. the Backup a policy created).
   */
  record(target: EventTarget, type: EventType, reason: string, message: string, fields: LogFields = {}): void {
    const namespace = target.metadata.namespace ?? 'default';
    const level = type === 'Warning' ? 'warn' : 'info';
    log[level](
      { event: reason, kind: target.kind, namespace, ...objectLogFields(target), ...fields },
      `${target.kind} ${namespace}/${target.metadata.name}: ${message}`,
    );
    if (this.backlog >= MAX_BACKLOG) return;
    this.backlog++;
    this.queue = this.queue
      .then(() => this.post(target, namespace, type, reason, message))
      .finally(() => this.backlog--);
  }

  /** Waits for the events still being posted (on shutdown). */
  async flush(): Promise<void> {
    await this.queue;
  }

  private async post(
    target: EventTarget,
    namespace: string,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${target.metadata.name}.`, namespace },
          involvedObject: {
            apiVersion: target.apiVersion,
            kind: target.kind,
            name: target.metadata.name ?? '',
            namespace,
            ...(target.metadata.uid ? { uid: target.metadata.uid } : {}),
          },
          type,
          reason,
          message,
          source: { component: this.component },
          reportingComponent: this.component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (error) {
      log.warn({ event: 'event-failed', reason, err: (error as Error).message }, 'could not record an event');
    }
  }
}
