import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Controller, ControllerHooks } from '../operator/runtime/controller.ts';
import { version } from '../version.ts';
import { AggregatedHistogram, type HistogramCounts } from './histogram.ts';
import { type ObjectSamples, type ObservedObjects, objectSamples, type Sample, SamplesMemo } from './samples.ts';

type GaugeKey = { [K in keyof ObjectSamples]: ObjectSamples[K] extends Sample[] ? K : never }[keyof ObjectSamples];
type HistogramKey = {
  [K in keyof ObjectSamples]: ObjectSamples[K] extends HistogramCounts ? K : never;
}[keyof ObjectSamples];

const SOURCE = ['namespace', 'policy', 'source'] as const;
const REPLICA = ['namespace', 'policy', 'repository'] as const;
const BY_TYPE = ['namespace', 'policy', 'type'] as const;

const GAUGES: { name: string; help: string; labels: readonly string[]; samples: GaugeKey }[] = [
  {
    name: 'tidemark_audit_missing_objects',
    help: 'Objects the newest audit of the source found missing (lastAudit.missingObjects: live rows or files the backup lacks); absent until an audit compared.',
    labels: SOURCE,
    samples: 'auditMissingObjects',
  },
  {
    name: 'tidemark_source_last_success_timestamp_seconds',
    help: 'Completion time of the newest successful Backup of the source (absent: never succeeded).',
    labels: SOURCE,
    samples: 'sourceLastSuccess',
  },
  {
    name: 'tidemark_source_rpo_seconds',
    help: 'Seconds since the newest successful Backup of the source; never succeeded: since the policy was created.',
    labels: SOURCE,
    samples: 'sourceRpo',
  },
  {
    name: 'tidemark_source_never_succeeded',
    help: '1 when no Backup of the source ever succeeded (or none that did is left), else 0.',
    labels: SOURCE,
    samples: 'sourceNeverSucceeded',
  },
  {
    name: 'tidemark_source_rpo_target_seconds',
    help: "The policy's RPO objective (absent when it sets none).",
    labels: SOURCE,
    samples: 'sourceRpoTarget',
  },
  {
    name: 'tidemark_source_rto_target_seconds',
    help: "The policy's RTO objective (absent when it sets none).",
    labels: SOURCE,
    samples: 'sourceRtoTarget',
  },
  {
    name: 'tidemark_source_consecutive_failures',
    help: 'Failed Backups of the source that ended after its last success (all failed ones present when it never succeeded).',
    labels: SOURCE,
    samples: 'sourceConsecutiveFailures',
  },
  {
    name: 'tidemark_replica_lag_seconds',
    help: "Age of the stalest source's newest snapshot held by the replica (a source not copied there yet: since its oldest success).",
    labels: REPLICA,
    samples: 'replicaLag',
  },
  {
    name: 'tidemark_replica_lag_objective_seconds',
    help: "The replica's maxLag (absent when it sets none).",
    labels: REPLICA,
    samples: 'replicaLagObjective',
  },
  {
    name: 'tidemark_backups',
    help: 'Finished Backups present now, by result and the reason of their Succeeded condition.',
    labels: [...BY_TYPE, 'result', 'reason'],
    samples: 'backups',
  },
  {
    name: 'tidemark_restores',
    help: 'Finished RestoreRequests present now, by result and the reason of their Succeeded condition.',
    labels: ['namespace', 'result', 'reason'],
    samples: 'restores',
  },
  {
    name: 'tidemark_restore_last_rto_seconds',
    help: 'Achieved RTO of the newest successful restore of a Backup of the policy.',
    labels: ['namespace', 'policy'],
    samples: 'restoreLastRto',
  },
  {
    name: 'tidemark_restore_drill_last_success_timestamp_seconds',
    help: 'Completion time of the newest successful restore drill of the source.',
    labels: SOURCE,
    samples: 'drillLastSuccess',
  },
  {
    name: 'tidemark_restore_drill_last_result',
    help: 'Result of the newest restore drill of the source: 1 ok, 0 failed.',
    labels: SOURCE,
    samples: 'drillLastResult',
  },
  {
    name: 'tidemark_unprotected_volumes',
    help: 'PersistentVolumeClaims in a namespace holding a BackupPolicy that no policy source selects.',
    labels: ['namespace'],
    samples: 'unprotectedVolumes',
  },
];

/** Labels and buckets are the observations' own (samples.ts): aggregated there, one entry per series. */
const HISTOGRAMS: { name: string; help: string; samples: HistogramKey }[] = [
  {
    name: 'tidemark_backup_duration_seconds',
    help: 'Run time (start to completion) of the successful Backups present now.',
    samples: 'backupDurations',
  },
  {
    name: 'tidemark_backup_size_bytes',
    help: 'Bytes read from the source by the successful Backups present now.',
    samples: 'backupSizes',
  },
  {
    name: 'tidemark_restore_duration_seconds',
    help: 'Run time (start to completion) of the successful RestoreRequests present now.',
    samples: 'restoreDurations',
  },
];

/**
 * The operator's metrics. Facts about API objects are computed when scraped, from the informer caches
 * of the replica that leads (`observe`), so a restart or a leader change loses nothing; a standby
 * replica reports only its own health (tidemark_leader 0). Controller counters are the process's own.
 */
export class OperatorMetrics {
  readonly registry = new Registry();
  /** Reconcile counting for the controller runtime. */
  readonly controllerHooks: ControllerHooks;
  private snapshot: ObjectSamples | undefined;
  /** What earlier scrapes computed from objects still in the caches. */
  private memo = new SamplesMemo();
  private observe: (() => ObservedObjects) | undefined;
  private controllers: Controller[] = [];
  private leading = false;
  private readonly countControllers: (controllers: Controller[]) => void;

  constructor() {
    const registers = [this.registry];
    const current = (key: GaugeKey): Sample[] => this.snapshot?.[key] ?? [];
    for (const spec of GAUGES)
      new Gauge({
        name: spec.name,
        help: spec.help,
        labelNames: spec.labels,
        registers,
        collect() {
          this.reset();
          for (const s of current(spec.samples)) this.set(s.labels, s.value);
        },
      });
    for (const spec of HISTOGRAMS)
      this.registry.registerMetric(
        new AggregatedHistogram(spec.name, spec.help, () => this.snapshot?.[spec.samples]).asMetric(),
      );

    const reconciles = new Counter({
      name: 'tidemark_controller_reconciles_total',
      help: 'Reconciles run by the controller in this process (errors included).',
      labelNames: ['controller'],
      registers,
    });
    const errors = new Counter({
      name: 'tidemark_controller_reconcile_errors_total',
      help: 'Reconciles of the controller that failed (and are retried with back-off).',
      labelNames: ['controller'],
      registers,
    });
    this.controllerHooks = {
      onReconcile: (controller, outcome) => {
        reconciles.inc({ controller });
        if (outcome === 'error') errors.inc({ controller });
      },
    };
    // Every controller's series from the start, at 0, so rate() and alerts see them before the first error.
    this.countControllers = (controllers) => {
      for (const c of controllers) {
        reconciles.inc({ controller: c.name }, 0);
        errors.inc({ controller: c.name }, 0);
      }
    };
    const metrics = this;
    new Gauge({
      name: 'tidemark_controller_queue_depth',
      help: "Keys waiting in the controller's work queue (0 on a standby replica).",
      labelNames: ['controller'],
      registers,
      collect() {
        for (const c of metrics.controllers) this.set({ controller: c.name }, metrics.leading ? c.queue.length : 0);
      },
    });
    new Gauge({
      name: 'tidemark_leader',
      help: '1 on the replica that holds the leader Lease (or runs without leader election), else 0.',
      registers,
      collect() {
        this.set(metrics.leading ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tidemark_build_info',
      help: 'The running version of Tidemark; always 1.',
      labelNames: ['version'],
      registers,
    }).set({ version }, 1);
    // prom-client samples the event loop every 10 ms by default: 100 wake-ups a second for one gauge.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
  }

  /** This replica leads (or runs without leader election), with these controllers. */
  lead(controllers: Controller[]): void {
    this.leading = true;
    this.controllers = controllers;
    this.countControllers(controllers);
  }

  /** The leader's caches have synced: object metrics come from `observe` from now on. */
  observeFrom(observe: () => ObservedObjects): void {
    this.observe = observe;
  }

  /** Leadership ended: object metrics go (the next leader reports them); the controllers' names stay, at 0 depth. */
  standBy(): void {
    this.leading = false;
    this.observe = undefined;
    this.snapshot = undefined;
    this.memo = new SamplesMemo();
  }

  /** One scrape: the object samples are computed once, then every metric reads them. */
  async render(): Promise<string> {
    this.snapshot = this.observe ? objectSamples(this.observe(), this.memo) : undefined;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
