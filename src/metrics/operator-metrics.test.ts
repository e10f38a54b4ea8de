// The exposition an operator serves: every name of the metrics contract (docs/metrics.md), object
// metrics only while leading, controller counters from the runtime's hooks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupPolicy } from '../api/kinds.ts';
import { BackupsByPolicy } from '../operator/runtime/by-policy.ts';
import { Controller } from '../operator/runtime/controller.ts';
import { OperatorMetrics } from './operator-metrics.ts';

const CONTRACT = [
  'tidemark_source_last_success_timestamp_seconds',
  'tidemark_source_rpo_seconds',
  'tidemark_source_never_succeeded',
  'tidemark_source_rpo_target_seconds',
  'tidemark_source_rto_target_seconds',
  // Beyond the contract: what "backups failing repeatedly" alerts on.
  'tidemark_source_consecutive_failures',
  'tidemark_replica_lag_seconds',
  'tidemark_replica_lag_objective_seconds',
  'tidemark_backups',
  'tidemark_restores',
  'tidemark_backup_duration_seconds',
  'tidemark_backup_size_bytes',
  'tidemark_restore_duration_seconds',
  'tidemark_restore_last_rto_seconds',
  'tidemark_restore_drill_last_success_timestamp_seconds',
  'tidemark_restore_drill_last_result',
  'tidemark_audit_missing_objects',
  'tidemark_unprotected_volumes',
  'tidemark_controller_reconciles_total',
  'tidemark_controller_reconcile_errors_total',
  'tidemark_controller_queue_depth',
  'tidemark_leader',
  'tidemark_build_info',
];

const policy = {
  metadata: { name: 'tenants', namespace: 'acme', creationTimestamp: '2026-11-01T00:00:00Z' },
  spec: { sources: [{ name: 'db' }], schedule: {}, repository: 'primary', objectives: { rpo: '1h' } },
} as unknown as BackupPolicy;

const observed = () => ({
  policies: [policy],
  backups: BackupsByPolicy.from([]),
  restores: [],
  claims: [],
  now: new Date('2026-11-01T01:00:00Z'),
});

describe('OperatorMetrics', () => {
  it('declares every metric of the contract, and no other tidemark_ name', async () => {
    const text = await new OperatorMetrics().render();
    const declared = [...text.matchAll(/^# TYPE (tidemark_\w+) /gm)].map((m) => m[1]).sort();
    assert.deepEqual(declared, [...CONTRACT].sort());
  });

  it('reports the objects only while leading; a standby says leader 0 and keeps its controller series', async () => {
    const metrics = new OperatorMetrics();
    const controller = new Controller('backuppolicy', async () => undefined, metrics.controllerHooks);
    controller.queue.add('acme/tenants');
    metrics.lead([controller]);
    metrics.observeFrom(observed);
    const leading = await metrics.render();
    assert.match(leading, /^tidemark_leader 1$/m);
    assert.match(leading, /^tidemark_source_rpo_seconds\{namespace="acme",policy="tenants",source="db"\} 3600$/m);
    assert.match(leading, /^tidemark_controller_queue_depth\{controller="backuppolicy"\} 1$/m);
    assert.match(leading, /^tidemark_controller_reconciles_total\{controller="backuppolicy"\} 0$/m);

    metrics.standBy();
    const standby = await metrics.render();
    assert.match(standby, /^tidemark_leader 0$/m);
    assert.doesNotMatch(standby, /^tidemark_source_/m);
    assert.match(standby, /^tidemark_controller_queue_depth\{controller="backuppolicy"\} 0$/m);
  });

  it('counts reconciles and errors per controller through the runtime hooks', async () => {
    const metrics = new OperatorMetrics();
    let calls = 0;
    const controller = new Controller(
      'backup',
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('API server unavailable');
        return undefined;
      },
      metrics.controllerHooks,
      1,
    );
    metrics.lead([controller]);
    metrics.observeFrom(observed);
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    controller.queue.add('acme/a');
    controller.queue.add('acme/b');
    while (calls < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    stop.abort();
    await running;
    const text = await metrics.render();
    assert.match(text, /^tidemark_controller_reconciles_total\{controller="backup"\} 2$/m);
    assert.match(text, /^tidemark_controller_reconcile_errors_total\{controller="backup"\} 1$/m);
  });
});
