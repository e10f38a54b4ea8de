import type { Backup, BackupPolicy, BackupRepository, RestoreRequest } from '../../api/kinds.ts';
import { RETIRED_ANNOTATION } from '../backup/decide.ts';
import { markForgetByRetention } from '../backup/deletion.ts';
import type { OperatorContext } from '../context.ts';
import { newlyFalse } from '../runtime/conditions.ts';
import { Controller, type ControllerHooks, keyOf, specSignature, splitKey } from '../runtime/controller.ts';
import { keepForeignFields } from '../runtime/policy-status.ts';
import { decidePolicy } from './decide.ts';

/** The BackupPolicy controller's shell: reads the caches, decides, creates and removes Backups, writes status. */
export function backupPolicyController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'backuppolicy',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const policy = informers.policies.get(name, namespace) as BackupPolicy | undefined;
      if (!policy || policy.metadata.deletionTimestamp) return undefined;
      const backups = ctx.backupsByPolicy.of(namespace, name);
      const repositories = new Map(
        (informers.repositories.list(namespace) as BackupRepository[]).map((r) => [r.metadata.name ?? '', r]),
      );
      const restores = informers.restores.list(namespace) as RestoreRequest[];
      const decision = decidePolicy({ policy, backups, repositories, restores, now: ctx.now() });

      for (const backup of decision.create) {
        const { created } = await resources.createOrGet('backups', backup);
        if (created)
          events.record(
            policy,
            'Normal',
            'BackupScheduled',
            `created ${backup.spec.type} Backup ${backup.metadata.name} for ${backup.spec.source}`,
            { backup: backup.metadata.name ?? '', source: backup.spec.source },
          );
      }
      for (const removal of decision.remove) {
        await resources.updateMetadata<Backup>('backups', namespace, removal.name, markForgetByRetention);
        await resources.delete('backups', namespace, removal.name);
        events.record(
          policy,
          'Normal',
          'BackupRemoved',
          `retention removed ${removal.name}: ${removal.reasons.join('; ')}`,
          { backup: removal.name },
        );
      }
      for (const retired of decision.retire) {
        await resources.updateMetadata<Backup>('backups', namespace, retired.name, (m) => ({
          ...m,
          annotations: { ...m.annotations, [RETIRED_ANNOTATION]: retired.repositories.join(',') },
        }));
        events.record(
          policy,
          'Normal',
          'BackupRetired',
          `retention removes ${retired.name} from ${retired.repositories.join(', ')} (kept elsewhere): ${retired.reasons.join('; ')}`,
          { backup: retired.name },
        );
      }
      for (const e of decision.events) events.record(policy, e.type, e.reason, e.message);
      // A Backup just created comes back as a watch event that requeues the policy, which writes the
      // status then: at a busy schedule slot every policy's Backup goes out before any status write.
      if (decision.create.length > 0) return { requeueAfterMs: decision.requeueAfterMs };
      await resources.writeStatus('backuppolicies', policy, (current) =>
        keepForeignFields(current.status, decision.status),
      );
      for (const c of newlyFalse(policy.status?.conditions, decision.status.conditions, [
        'Ready',
        'RPOMet',
        'ReplicasHealthy',
        'Verification',
      ]))
        events.record(policy, 'Warning', c.reason, c.message ?? '');
      return { requeueAfterMs: decision.requeueAfterMs };
    },
    hooks,
    // Many policies fall due at the same second (every hour, every night): their Backups go out in parallel.
    8,
  );
  controller.watch(informers.policies, undefined, specSignature);
  controller.watch(
    informers.backups,
    (b) => [`${b.metadata?.namespace}/${(b as Backup).spec.policy}`],
    (b) =>
      JSON.stringify([
        (b as Backup).status?.phase,
        (b as Backup).status?.completionTime,
        (b as Backup).status?.repositories?.map((r) => [r.repository, r.state, r.completionTime]),
      ]),
  );
  controller.watch(
    informers.repositories,
    (r) => (informers.policies.list(r.metadata?.namespace) as BackupPolicy[]).map((p) => keyOf(p as never)),
    (r) =>
      JSON.stringify([
        (r as BackupRepository).spec.region,
        (r as BackupRepository).spec.immutability,
        (r as BackupRepository).status?.initialized,
      ]),
  );
  // Retention keeps the Backups of a RestoreRequest that has not ended: look again when it ends or goes.
  controller.watch(
    informers.restores,
    (r) => {
      const request = r as RestoreRequest;
      const namespace = request.metadata.namespace ?? '';
      const named = [request.spec.from.backupName, request.status?.backupName]
        .map((name) => (name ? (informers.backups.get(name, namespace) as Backup | undefined)?.spec.policy : undefined))
        .concat(request.spec.from.policy);
      return [...new Set(named.filter((p): p is string => Boolean(p)))].map((p) => `${namespace}/${p}`);
    },
    (r) => JSON.stringify([(r as RestoreRequest).status?.phase, (r as RestoreRequest).status?.backupName]),
  );
  return controller;
}
