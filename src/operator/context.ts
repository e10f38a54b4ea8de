import * as k8s from '@kubernetes/client-node';
import type {
  Backup,
  BackupExport,
  BackupPolicy,
  BackupReport,
  BackupRepository,
  RestoreRequest,
} from '../api/kinds.ts';
import type { AgentSettings } from './jobs/agent-job.ts';
import { REPORT_PHASE_LABEL } from './report/decide.ts';
import { BackupObjects } from './runtime/backup-objects.ts';
import { BackupsByPolicy } from './runtime/by-policy.ts';
import { cachedBackup } from './runtime/cached.ts';
import { EventRecorder } from './runtime/events.ts';
import { Resources } from './runtime/resources.ts';
import { asWatched } from './runtime/time.ts';

type Cached<T extends k8s.KubernetesObject> = k8s.Informer<T> & k8s.ObjectCache<T>;

/** What every controller shares: clients, informers (the caches they read), the recorder, settings and the clock. */
export interface OperatorContext {
  kc: k8s.KubeConfig;
  resources: Resources;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  events: EventRecorder;
  settings: AgentSettings;
  now: () => Date;
  /** Backups' record counts (status.objects), which the backups cache leaves out. */
  backupObjects: BackupObjects;
  /** The backups cache by policy (runtime/by-policy.ts). */
  backupsByPolicy: BackupsByPolicy;
  informers: {
    repositories: Cached<BackupRepository & k8s.KubernetesObject>;
    policies: Cached<BackupPolicy & k8s.KubernetesObject>;
    backups: Cached<Backup & k8s.KubernetesObject>;
    restores: Cached<RestoreRequest & k8s.KubernetesObject>;
    /** Open BackupReports only: Final ones, the bulk of them, are listed once a day (report/controller.ts). */
    openReports: Cached<BackupReport & k8s.KubernetesObject>;
    exports: Cached<BackupExport & k8s.KubernetesObject>;
    jobs: Cached<k8s.V1Job>;
    /** Every PVC (the metrics count those no policy selects). */
    claims: Cached<k8s.V1PersistentVolumeClaim>;
  };
}

export function createContext(
  kc: k8s.KubeConfig,
  settings: AgentSettings,
  now: () => Date = () => new Date(),
): OperatorContext {
  const resources = new Resources(kc);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const managed = 'app.kubernetes.io/managed-by=tidemark';
  // Without their record counts (runtime/cached.ts): their totals are noted, the rest read when needed.
  const backupObjects = new BackupObjects(resources);
  const backups = resources.informer<Backup>('backups', undefined, (b) => {
    backupObjects.noteTotal(b);
    return cachedBackup(b);
  });
  backups.on('delete', (b) => backupObjects.forget(b));
  return {
    kc,
    resources,
    core,
    batch,
    events: new EventRecorder(kc),
    settings,
    now,
    backupObjects,
    backupsByPolicy: BackupsByPolicy.following(backups),
    informers: {
      repositories: resources.informer('backuprepositories'),
      policies: resources.informer('backuppolicies'),
      backups,
      restores: resources.informer('restorerequests'),
      openReports: resources.informer('backupreports', `${REPORT_PHASE_LABEL}=Open`),
      exports: resources.informer('backupexports'),
      jobs: k8s.makeInformer(
        kc,
        '/apis/batch/v1/jobs',
        // Typed lists carry Dates, watch events strings: the cache gets one shape (runtime/time.ts).
        async () => asWatched(await batch.listJobForAllNamespaces({ labelSelector: managed })),
        managed,
      ),
      claims: k8s.makeInformer(kc, '/api/v1/persistentvolumeclaims', async () =>
        asWatched(await core.listPersistentVolumeClaimForAllNamespaces()),
      ),
    },
  };
}
