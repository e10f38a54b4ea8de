import { objectName, timestamp } from './common.ts';
import { array, boolean, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

/** Bounds of one report (an object in etcd): what is cut beyond them is counted in the *Omitted fields. */
export const REPORT_LIMITS = {
  /** Runs listed; beyond it failures are kept first, then the newest. */
  runs: 200,
  /** Record counts listed across all sources; each source gets a fair share. */
  objects: 500,
  /** Objects that could not be backed up, listed across all sources. */
  skipped: 100,
  /** Characters of an error or skip reason kept. */
  reason: 512,
} as const;

const bytes = (what: string) => optional(integer({ minimum: 0, description: what }));

const counts = {
  runs: integer({ minimum: 0, description: 'Runs that started this day.' }),
  succeeded: integer({ minimum: 0 }),
  failed: integer({ minimum: 0 }),
  running: integer({ minimum: 0, description: 'Pending or Running when the report was written.' }),
  logicalBytes: bytes('Bytes read from the sources by the successful runs.'),
  storedBytes: bytes('Bytes the successful runs reference in the repository.'),
  uploadedBytes: bytes('New bytes the successful runs wrote (after dedup and compression).'),
};

const run = object({
  backup: string({ description: 'The Backup (it may since have been removed by retention).', maxLength: 253 }),
  source: string({ maxLength: 63 }),
  type: optional(enumOf(['full', 'incremental'] as const)),
  phase: enumOf(['Pending', 'Running', 'Succeeded', 'Failed'] as const),
  startTime: optional(timestamp('When the run started (its creation while it waits).')),
  completionTime: optional(timestamp('When the run ended.')),
  logicalBytes: bytes('As on the Backup.'),
  storedBytes: bytes('As on the Backup.'),
  uploadedBytes: bytes('As on the Backup.'),
  records: optional(integer({ minimum: 0, description: 'Sum of the record counts of the Backup.' })),
  skipped: optional(integer({ minimum: 0, description: 'Objects the run could not back up.' })),
  error: optional(string({ description: 'Why the run failed (shortened).', maxLength: 1024 })),
  removed: optional(boolean({ description: 'The Backup no longer exists; this is what the report saw of it.' })),
});

const objectCount = object({
  name: string({ maxLength: 1024 }),
  records: integer({ minimum: 0 }),
  change: optional(
    integer({ description: 'Records now minus records in the day before (absent: no count the day before).' }),
  ),
});

const sourceReport = object({
  name: string({ maxLength: 63 }),
  ...counts,
  lastSuccessfulBackup: optional(string({ description: 'Newest successful run of the day.', maxLength: 253 })),
  lastSuccessTime: optional(timestamp('When it completed.')),
  objectCount: optional(integer({ minimum: 0, description: 'Objects in that backup (tables, directories).' })),
  records: optional(integer({ minimum: 0, description: 'Sum of their record counts.' })),
  objects: optional(
    array(objectCount, {
      description:
        'Record counts per object from the newest successful run of the day, and the change against the newest of the day before.',
      maxItems: REPORT_LIMITS.objects,
      'x-kubernetes-list-type': 'atomic',
    }),
  ),
  objectsOmitted: optional(
    integer({
      minimum: 0,
      description: 'Objects left out of the list (bounded); those whose count changed are listed first.',
    }),
  ),
  comparedWith: optional(
    string({ description: 'The run of the day before the changes are counted against.', maxLength: 253 }),
  ),
  skipped: optional(
    array(object({ name: string({ maxLength: 1024 }), reason: string({ maxLength: 1024 }) }), {
      description: 'Objects that could not be backed up in the runs of the day, and why.',
      maxItems: REPORT_LIMITS.skipped,
      'x-kubernetes-list-type': 'atomic',
    }),
  ),
  skippedOmitted: optional(integer({ minimum: 0 })),
});

export const backupReportSpec = object(
  {
    policy: objectName('The BackupPolicy reported on.'),
    date: string({
      description: "The day reported on, YYYY-MM-DD in timeZone (the policy's schedule time zone).",
      maxLength: 10,
      rules: [{ rule: `self.matches(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$')`, message: 'must be a date YYYY-MM-DD' }],
    }),
    timeZone: string({ description: 'IANA time zone the day is counted in.', maxLength: 64 }),
  },
  {
    description: 'Written by the operator; one report per policy and day.',
    rules: [{ rule: 'self == oldSelf', message: "a BackupReport's spec is immutable" }],
  },
);

export const backupReportStatus = object({
  phase: optional(
    enumOf(['Open', 'Final'] as const, {
      description: 'Open while the day runs or one of its runs has not ended; Final after, and no longer written.',
    }),
  ),
  start: optional(timestamp('First instant of the day.')),
  end: optional(timestamp('First instant of the next day.')),
  updateTime: optional(timestamp('When the operator last wrote the report.')),
  ...counts,
  sources: optional(
    array(sourceReport, {
      description: 'Per source of the policy.',
      maxItems: 200,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  ),
  backups: optional(
    array(run, {
      description: 'The runs of the day, oldest first.',
      maxItems: REPORT_LIMITS.runs,
      'x-kubernetes-list-type': 'atomic',
    }),
  ),
  runsOmitted: optional(
    integer({ minimum: 0, description: 'Runs counted above but left out of backups (bounded; failures kept first).' }),
  ),
});

export type BackupReportSpec = TypeOf<typeof backupReportSpec>;
export type BackupReportStatus = TypeOf<typeof backupReportStatus>;
export type ReportRun = TypeOf<typeof run>;
export type SourceReport = TypeOf<typeof sourceReport>;
export type ReportObjectCount = TypeOf<typeof objectCount>;
