import { conditions, databaseTls, duration, labelName, objectName, secretRef, timestamp } from './common.ts';
import { schedule, triggerFields, triggerRules } from './schedule.ts';
import {
  array,
  boolean,
  enumOf,
  integer,
  object,
  opaque,
  opaqueList,
  optional,
  string,
  stringMap,
  type TypeOf,
} from './schema.ts';

const databaseSource = (engine: string) =>
  object(
    {
      connectionSecret: secretRef(
        `Secret with host, port, username and (unless the server authenticates by certificate) password keys for the ${engine} server.`,
      ),
      tls: optional(databaseTls),
      lockWaitTimeout: optional(
        duration(
          'How long a backup waits for a table lock held by another session (a migration holding ACCESS EXCLUSIVE, a metadata lock) before it fails naming the table and the holder. Default 5m.',
        ),
      ),
      databases: optional(
        array(string({ minLength: 1, maxLength: 63 }), {
          description: 'Databases to back up (one tenant = one database).',
          minItems: 1,
          maxItems: 1000,
          'x-kubernetes-list-type': 'set',
        }),
      ),
      allDatabases: optional(boolean({ description: 'Back up every database of the server, and its roles once.' })),
    },
    {
      description: `A ${engine} server.`,
      rules: [
        {
          rule: 'has(self.databases) != (has(self.allDatabases) && self.allDatabases)',
          message: 'set either databases (a list) or allDatabases: true',
        },
      ],
    },
  );

const volumeSource = object(
  {
    claimName: optional(objectName('PersistentVolumeClaim to back up.')),
    selector: optional(
      object(
        { matchLabels: stringMap({ description: 'Back up every PVC with these labels.' }) },
        { description: 'Label selector for PVCs.' },
      ),
    ),
    excludes: optional(
      array(string({ maxLength: 1024 }), {
        description: 'Glob patterns of paths to skip, e.g. "**/*.tmp".',
        maxItems: 256,
      }),
    ),
    volumeSnapshotClassName: optional(
      objectName('Take a CSI VolumeSnapshot with this class first and read the snapshot (crash-consistent).'),
    ),
  },
  {
    description: 'Document volumes.',
    rules: [
      {
        rule: 'has(self.claimName) != has(self.selector)',
        message: 'set exactly one of claimName or selector',
      },
    ],
  },
);

const source = object(
  {
    name: labelName('Name of the source; part of Backup names.', 40),
    postgres: optional(databaseSource('PostgreSQL')),
    mysql: optional(databaseSource('MySQL/MariaDB')),
    volume: optional(volumeSource),
  },
  {
    rules: [
      {
        rule: '(has(self.postgres) ? 1 : 0) + (has(self.mysql) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1',
        message: 'each source sets exactly one of postgres, mysql or volume',
      },
    ],
  },
);

export const retention = object(
  {
    keepLastFull: optional(
      integer({
        description:
          'Keep this many most recent full backups. Incrementals stay until a newer full supersedes them (unless a keepDaily/Weekly/Monthly rule keeps them). When retention sets no rule at all, 7 applies; a rule that sets any field gets only what it says.',
        rules: [{ rule: 'self >= 1', message: 'retention must keep at least one full backup (keepLastFull >= 1)' }],
      }),
    ),
    keepDaily: optional(integer({ minimum: 0, description: 'Also keep the last backup of each of this many days.' })),
    keepWeekly: optional(integer({ minimum: 0, description: 'Also keep the last backup of each of this many weeks.' })),
    keepMonthly: optional(
      integer({ minimum: 0, description: 'Also keep the last backup of each of this many months.' }),
    ),
    maxAge: optional(
      duration(
        'Remove backups older than this, except the newest full chain. Alone (no keepLastFull/keepDaily/Weekly/Monthly) it keeps every backup younger than this.',
      ),
    ),
  },
  { description: 'How long backups are kept in one repository.' },
);

/** Database names (or claim names) a restore may write, as globs: `*` any characters, `?` one. */
const globs = (description: string) =>
  array(string({ minLength: 1, maxLength: 253 }), { description, minItems: 1, maxItems: 64 });

const databaseTargetRule = (engine: string) =>
  object(
    {
      connectionSecret: secretRef(`The ${engine} server a restore may write, by its connection Secret.`),
      databases: globs('Database names a restore may write on that server, as globs (e.g. qa_*).'),
    },
    { description: `${engine} databases a restore may write.` },
  );

const restoreTargetRule = object(
  {
    original: optional(
      boolean({
        description: 'The backed-up source itself (a request with target.original: true).',
        rules: [{ rule: 'self', message: 'original may only be true' }],
      }),
    ),
    postgres: optional(databaseTargetRule('PostgreSQL')),
    mysql: optional(databaseTargetRule('MySQL/MariaDB')),
    volume: optional(
      object(
        { claimNames: globs("PersistentVolumeClaims (in the request's namespace) a restore may write, as globs.") },
        { description: 'Volumes a restore may write.' },
      ),
    ),
  },
  {
    description: 'One kind of target a restore may write.',
    rules: [
      {
        rule: '(has(self.original) ? 1 : 0) + (has(self.postgres) ? 1 : 0) + (has(self.mysql) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1',
        message: 'each restore target sets exactly one of original, postgres, mysql or volume',
      },
    ],
  },
);

const postRestoreScript = object(
  {
    name: labelName('Name a RestoreRequest picks the script by (spec.postRestoreScript).'),
    sql: string({
      description:
        'SQL run on the restored database before anyone can connect to it (PostgreSQL: on the scratch copy).',
      minLength: 1,
      maxLength: 65536,
    }),
    runAs: optional(
      object(
        {
          connectionSecret: secretRef(
            "Secret with the username and password keys of the role the script runs as (host and port are the restore target's). Give it a role without superuser.",
          ),
        },
        { description: 'The database role the script runs as.' },
      ),
    ),
    runAsRestoreUser: optional(
      boolean({
        description:
          "Run the script as the restore target's own user instead: everything that user may do, for a superuser including COPY ... TO PROGRAM (a shell on the database server). Must be stated explicitly.",
        rules: [{ rule: 'self', message: 'runAsRestoreUser may only be true; omit it and set runAs' }],
      }),
    ),
  },
  {
    rules: [
      {
        rule: 'has(self.runAs) != has(self.runAsRestoreUser)',
        message: 'set either runAs.connectionSecret (a role without superuser) or runAsRestoreUser: true',
      },
    ],
  },
);

const drillServer = (engine: string) =>
  object(
    {
      connectionSecret: secretRef(
        `Secret with host, port, username and password keys of the ${engine} server drills restore into. Give it a server of its own: a drill server that is one of the policy's sources is refused.`,
      ),
      tls: optional(databaseTls),
    },
    {
      description: `Where drills of ${engine} sources restore: a temporary database tidemark_drill_<random> on this server, dropped when the drill ends.`,
    },
  );

const scratchVolume = object(
  {
    storageClassName: optional(objectName('StorageClass of the scratch PVC (absent: the cluster default).')),
    size: optional(
      string({
        maxLength: 32,
        pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$',
        description:
          "Requested storage of the scratch PVC, e.g. 20Gi (absent: the sum of the source PVCs' requested storage).",
      }),
    ),
  },
  {
    description:
      'The scratch PVC a drill of a volume source restores into: created for the drill, mounted only by its Job, deleted when it ended.',
  },
);

const audit = object(
  {
    ...triggerFields,
    timestampColumns: optional(
      stringMap({
        description:
          'Databases: table (as the backup names it, e.g. public.orders) → timestamp column whose newest value backups record and audits compare; a table not named gets one found.',
        rules: [{ rule: 'size(self) <= 1000', message: 'name at most 1000 tables' }],
      }),
    ),
  },
  { description: 'When to compare live sources with their latest successful backup.', rules: triggerRules },
);

const restoreDrill = object(
  {
    ...triggerFields,
    postgres: optional(drillServer('PostgreSQL')),
    mysql: optional(drillServer('MySQL/MariaDB')),
    volume: optional(scratchVolume),
    olderBackupEvery: optional(
      integer({
        minimum: 2,
        description:
          'Every Nth drill of a source restores a randomly chosen older retained backup instead of the latest (absent: always the latest).',
      }),
    ),
  },
  {
    description:
      "When to restore a source's latest backup into a scratch target, check it against what the backup recorded and measure the RTO (objectives.rto is the target). Database sources need the drill server of their engine; volume sources restore into a scratch PVC.",
    rules: triggerRules,
  },
);

const replica = object({
  repository: objectName('BackupRepository that receives a copy of every backup.'),
  region: labelName(
    'Region of that repository, checked against allowedRegions (and by the operator against the repository).',
  ),
  retention: optional(retention),
  maxLag: optional(duration('Replica lag objective: alert when the newest copy is older than this.')),
});

export const backupPolicySpec = object(
  {
    sources: array(source, {
      description: 'What to back up.',
      minItems: 1,
      maxItems: 200,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
    schedule,
    repository: objectName('Primary BackupRepository (same namespace).'),
    replicas: optional(
      array(replica, {
        description: 'Secondary repositories (another region or provider).',
        maxItems: 8,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['repository'],
      }),
    ),
    retention: optional(retention),
    objectives: optional(
      object(
        {
          rpo: optional(duration('Recovery point objective: the most data, in time, that may be lost.')),
          rto: optional(duration('Recovery time objective: the longest a restore may take.')),
        },
        { description: 'Recovery objectives, exported as metrics and conditions.' },
      ),
    ),
    restore: optional(
      object(
        {
          approval: optional(
            object(
              {
                required: integer({
                  minimum: 0,
                  maximum: 10,
                  description: 'Distinct approvals needed (0: none).',
                }),
                approverGroups: optional(
                  array(string({ maxLength: 253 }), {
                    description: 'Groups whose members may approve.',
                    maxItems: 32,
                  }),
                ),
                approverUsers: optional(
                  array(string({ maxLength: 253 }), { description: 'Users who may approve.', maxItems: 64 }),
                ),
              },
              {
                description: 'Four-eyes rule: the requester never counts as an approver.',
                rules: [
                  {
                    rule: 'self.required == 0 || (has(self.approverGroups) && size(self.approverGroups) > 0) || (has(self.approverUsers) && size(self.approverUsers) > 0)',
                    message: 'approval.required > 0 needs approverGroups or approverUsers',
                  },
                ],
              },
            ),
          ),
          targets: optional(
            array(restoreTargetRule, {
              description:
                "Where a restore of this policy's backups (or, when this policy's rules apply, of its repository's snapshots) may write. Absent: only the original source, with target.original: true. A target that is a live source of a policy in the namespace (same Secret and a database it backs up, or same PVC) is refused even when listed: restoring over a source takes target.original: true.",
              maxItems: 64,
            }),
          ),
          postRestoreScripts: optional(
            array(postRestoreScript, {
              description:
                'SQL scripts a RestoreRequest may run on the restored database, by name (spec.postRestoreScript); a request carries no SQL of its own.',
              maxItems: 32,
              'x-kubernetes-list-type': 'map',
              'x-kubernetes-list-map-keys': ['name'],
            }),
          ),
        },
        { description: "Rules for restores of this policy's backups." },
      ),
    ),
    verification: optional(
      object(
        {
          audit: optional(audit),
          restoreDrill: optional(restoreDrill),
        },
        { description: 'Scheduled audits and restore drills.' },
      ),
    ),
    reports: optional(
      object(
        {
          keepDays: optional(
            integer({
              minimum: 1,
              maximum: 400,
              default: 14,
              description: 'Daily BackupReports older than this many days are deleted. Default 14.',
            }),
          ),
        },
        { description: 'The daily BackupReports the operator writes for this policy.' },
      ),
    ),
    allowedRegions: optional(
      array(labelName('A region.'), {
        description: 'Data residency: every repository of this policy must be in one of these regions.',
        minItems: 1,
        maxItems: 32,
        'x-kubernetes-list-type': 'set',
      }),
    ),
    jobTemplate: optional(
      object(
        {
          resources: optional(opaque<Record<string, unknown>>({ description: 'Agent container resources.' })),
          nodeSelector: optional(stringMap({ description: 'Node selector for agent pods.' })),
          tolerations: optional(opaqueList<Record<string, unknown>>({ description: 'Tolerations for agent pods.' })),
          activeDeadlineSeconds: optional(integer({ minimum: 60, description: 'Fail a run that takes longer.' })),
          backoffLimit: optional(integer({ minimum: 0, maximum: 10, default: 2, description: 'Pod retries per run.' })),
        },
        { description: 'How agent Jobs of this policy run.' },
      ),
    ),
  },
  {
    rules: [
      {
        rule: '!has(self.replicas) || self.replicas.all(r, r.repository != self.repository)',
        message: 'a replica must not be the primary repository',
        fieldPath: '.replicas',
      },
      {
        rule: '!has(self.allowedRegions) || !has(self.replicas) || self.replicas.all(r, r.region in self.allowedRegions)',
        message: 'every replica region must be one of allowedRegions (data residency)',
        fieldPath: '.replicas',
      },
    ],
  },
);

/** At most this many tables or files per list in a source's lastAudit; the totals count them all. */
export const AUDIT_LIST_LIMIT = 5;

const boundedPaths = (description: string) =>
  array(string({ maxLength: 256 }), { description, maxItems: AUDIT_LIST_LIMIT });

const auditedValue = (description: string) =>
  optional(
    object(
      { column: string({ maxLength: 128 }), recorded: string({ maxLength: 256 }), live: string({ maxLength: 256 }) },
      { description },
    ),
  );

const lastAudit = object(
  {
    scheduledTime: timestamp('The schedule slot the audit ran for.'),
    completionTime: timestamp('When it ended.'),
    result: enumOf(['Clean', 'Missing', 'Failed', 'NoBackup'] as const, {
      description:
        'Clean: the backup holds everything live; Missing: live data the backup lacks (see missingObjects); Failed: the audit could not run (message); NoBackup: no successful backup to compare with.',
    }),
    message: optional(string({ maxLength: 1024 })),
    backup: optional(string({ description: 'The Backup audited (the latest successful one).', maxLength: 253 })),
    missingObjects: optional(
      integer({
        minimum: 0,
        description:
          'Databases: live rows the backup lacks (per table, live count minus the recorded one, never negative; every row of a table created since). Volumes: files not in the backup plus files changed since.',
      }),
    ),
    tables: optional(
      object(
        {
          compared: integer({ minimum: 0 }),
          differing: integer({ minimum: 0, description: 'Tables whose live state differs from the backup.' }),
          differences: array(
            object({
              name: string({ maxLength: 256 }),
              recorded: optional(integer({ minimum: 0, description: 'Rows in the backup; absent: not in it.' })),
              live: optional(integer({ minimum: 0, description: 'Rows live; absent: the table is gone.' })),
              missing: integer({ minimum: 0 }),
              removed: integer({ minimum: 0 }),
              keyAdvanced: auditedValue('The primary key maximum is past the recorded one.'),
              newerRows: auditedValue('The timestamp column holds values past the recorded newest.'),
            }),
            { description: 'The tables differing most, by missing rows.', maxItems: AUDIT_LIST_LIMIT },
          ),
        },
        { description: 'Databases: tables compared with what the backup recorded.' },
      ),
    ),
    files: optional(
      object(
        {
          live: integer({ minimum: 0, description: 'Files and symlinks found live.' }),
          missing: boundedPaths('Files not in the backup (created since, or skipped by it).'),
          missingTotal: integer({ minimum: 0 }),
          removed: boundedPaths('Files in the backup that are gone.'),
          removedTotal: integer({ minimum: 0 }),
          changed: array(object({ path: string({ maxLength: 256 }), change: string({ maxLength: 64 }) }), {
            description: 'Files whose type, size, mtime or link target changed since.',
            maxItems: AUDIT_LIST_LIMIT,
          }),
          changedTotal: integer({ minimum: 0 }),
        },
        { description: 'Volumes: the live files compared with the backup.' },
      ),
    ),
  },
  { description: 'The newest audit of this source (verification.audit).' },
);

const sourceStatus = object({
  name: string({ maxLength: 63 }),
  lastBackup: optional(string({ description: 'Newest Backup of this source.', maxLength: 253 })),
  lastBackupTime: optional(timestamp('When the newest Backup was created.')),
  lastSuccessfulBackup: optional(string({ maxLength: 253 })),
  lastSuccessTime: optional(timestamp('When the newest successful Backup completed.')),
  lastFullTime: optional(timestamp('Scheduled time of the newest full run.')),
  lastIncrementalTime: optional(timestamp('Scheduled time of the newest incremental run.')),
  nextRunTime: optional(timestamp('When the next run is due; absent while the schedule is suspended.')),
  lastAudit: optional(lastAudit),
  lastDrill: optional(
    object(
      {
        time: timestamp('When the drill ended.'),
        backup: string({ description: 'The Backup the drill restored.', maxLength: 253 }),
        result: enumOf(['Succeeded', 'Failed'] as const, {
          description: 'Succeeded: restored into the scratch target and matching what the backup recorded.',
        }),
        rtoSeconds: optional(
          integer({ minimum: 0, description: 'Achieved RTO: from the start of the restore until it was verified.' }),
        ),
        rtoTargetSeconds: optional(integer({ minimum: 0, description: "The policy's objectives.rto, when set." })),
        message: string({ description: 'What was checked, or why the drill failed.', maxLength: 4096 }),
        job: string({ description: "The drill's Job.", maxLength: 63 }),
      },
      { description: 'The newest restore drill of this source.' },
    ),
  ),
  lastDrillSuccessTime: optional(timestamp('When the newest successful restore drill of this source ended.')),
  drills: optional(
    integer({ minimum: 0, description: 'Drills of this source so far (olderBackupEvery counts them).' }),
  ),
});

export const backupPolicyStatus = object({
  conditions: optional(conditions),
  observedGeneration: optional(integer({ minimum: 0 })),
  sources: optional(array(sourceStatus, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })),
  replicas: optional(
    array(
      object({
        repository: string({ maxLength: 253 }),
        lastCopyTime: optional(timestamp('When the newest copy held in this replica completed.')),
        newestSnapshotTime: optional(
          timestamp(
            'Completion time of the newest snapshot this replica holds, for the stalest source (absent while a source with a successful backup has no copy here). The replica lag is now minus this; ReplicasHealthy compares it with maxLag.',
          ),
        ),
        lastFailure: optional(
          object(
            {
              backup: string({ maxLength: 253 }),
              source: string({ maxLength: 253 }),
              time: timestamp('When the copy failed.'),
              message: optional(string({ maxLength: 4096 })),
            },
            {
              description:
                'The newest failed copy to this replica, kept (even once its Backup is gone) until a later copy of that source succeeds there; ReplicasHealthy stays False ReplicationFailing while it is set.',
            },
          ),
        ),
      }),
      { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['repository'] },
    ),
  ),
  retentionHolds: optional(
    array(
      object({
        backup: string({ maxLength: 253 }),
        reason: string({ maxLength: 4096 }),
      }),
      {
        description:
          'Backups that retention would remove (or retire from a repository) but keeps for now, and why: a RestoreRequest that has not ended, or a repository immutability period.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['backup'],
      },
    ),
  ),
  lastSuccessTime: optional(
    timestamp(
      "Oldest of the sources' last successes: the policy is as fresh as its stalest source. Now minus this is the current RPO (kubectl shows it as an age). Absent while any source has no successful backup (never).",
    ),
  ),
  nextRunTime: optional(timestamp('Earliest next run across sources; absent while the schedule is suspended.')),
});

export type BackupPolicySpec = TypeOf<typeof backupPolicySpec>;
export type BackupPolicyStatus = TypeOf<typeof backupPolicyStatus>;
export type Source = BackupPolicySpec['sources'][number];
export type Retention = TypeOf<typeof retention>;
export type RestoreRules = NonNullable<BackupPolicySpec['restore']>;
export type RestoreTargetRule = NonNullable<RestoreRules['targets']>[number];
export type SourceStatus = NonNullable<BackupPolicyStatus['sources']>[number];
export type LastAudit = NonNullable<SourceStatus['lastAudit']>;
export type PostRestoreScript = NonNullable<RestoreRules['postRestoreScripts']>[number];
export type RestoreDrill = NonNullable<NonNullable<BackupPolicySpec['verification']>['restoreDrill']>;
export type LastDrill = NonNullable<SourceStatus['lastDrill']>;
