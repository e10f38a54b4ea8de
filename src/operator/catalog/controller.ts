import type * as k8s from '@kubernetes/client-node';
import { CATALOG_KEY, type CatalogEntry } from '../../agent/tasks/catalog.ts';
import type { Backup, BackupRepository } from '../../api/kinds.ts';
import { IMPORTED_FROM } from '../backup/decide.ts';
import type { OperatorContext } from '../context.ts';
import { jobOutcome, observeJobs, ownerKeysOf } from '../jobs/agent-result.ts';
import { createAgentJobs } from '../jobs/create.ts';
import { Controller, type ControllerHooks, splitKey } from '../runtime/controller.ts';
import {
  CATALOG_LABEL,
  type CatalogObserved,
  catalogConfigMapName,
  catalogJobName,
  decideCatalog,
  parseCatalog,
  pendingSync,
  SYNCED,
} from './decide.ts';

/**
 * The re-import controller's shell: on a BackupRepository's sync request, runs the catalog Job,
 * reads the catalog ConfigMap it wrote, creates the missing Backups (then their status: the status
 * subresource ignores it on create) and records the request as handled.
 */
export function catalogController(ctx: OperatorContext, hooks?: ControllerHooks): Controller {
  const { informers, resources, events } = ctx;
  const controller = new Controller(
    'catalog',
    async (key) => {
      const { namespace, name } = splitKey(key);
      const repository = informers.repositories.get(name, namespace) as BackupRepository | undefined;
      const request = repository && pendingSync(repository);
      if (!repository || !request) return undefined;
      const job = (await observeJobs(ctx, repository)).get(catalogJobName(repository, request));
      const observed: CatalogObserved = {
        repository,
        ...(job ? { job } : {}),
        backups: informers.backups.list(namespace) as Backup[],
        settings: ctx.settings,
      };
      if (job && jobOutcome(job.job) === 'Complete') {
        const catalog = await readCatalog(ctx, repository);
        if (catalog) observed.catalog = catalog;
      }
      const decision = decideCatalog(observed);
      await createAgentJobs(ctx, namespace, decision.createJob ? [decision.createJob] : []);
      for (const backup of decision.createBackups) {
        // One created by an earlier pass that stopped before its status (a restart) gets it now.
        const { object } = await resources.createOrGet('backups', backup);
        const imported = object.metadata.annotations?.[IMPORTED_FROM];
        if (backup.status && imported && !object.status?.phase)
          await resources.writeStatus('backups', object, backup.status);
      }
      if (decision.markSynced !== undefined) {
        const synced = decision.markSynced;
        await resources.updateMetadata<BackupRepository>('backuprepositories', namespace, name, (m) => ({
          ...m,
          annotations: { ...(m.annotations ?? {}), [SYNCED]: synced },
        }));
      }
      for (const e of decision.events) events.record(repository, e.type, e.reason, e.message);
      return undefined;
    },
    hooks,
  );
  controller.watch(informers.repositories, undefined, (r) => pendingSync(r as BackupRepository) ?? '');
  controller.watch(informers.jobs, (job) =>
    job.metadata?.labels?.[CATALOG_LABEL] ? ownerKeysOf(job, 'BackupRepository') : [],
  );
  return controller;
}

async function readCatalog(ctx: OperatorContext, repository: BackupRepository): Promise<CatalogEntry[] | undefined> {
  const namespace = repository.metadata.namespace ?? '';
  try {
    const map: k8s.V1ConfigMap = await ctx.core.readNamespacedConfigMap({
      name: catalogConfigMapName(repository),
      namespace,
    });
    const text = map.data?.[CATALOG_KEY];
    return text ? parseCatalog(text) : undefined;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}
