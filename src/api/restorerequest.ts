import { conditions, labelName, objectCounts, objectName, progress, secretRef, timestamp } from './common.ts';
import { array, boolean, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

export const RESTORE_PHASES = ['Pending', 'PendingApproval', 'Approved', 'Running', 'Succeeded', 'Failed'] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

const databaseTarget = (engine: string) =>
  object(
    {
      connectionSecret: secretRef(`Secret with host, port, username and password keys for the ${engine} server.`),
      database: string({ description: 'Database to restore into.', minLength: 1, maxLength: 63 }),
    },
    { description: `A ${engine} database.` },
  );

export const restoreRequestSpec = object(
  {
    from: object(
      {
        backupName: optional(objectName('Restore this Backup; waits while it is still running or not yet created.')),
        policy: optional(objectName('Restore the latest Backup of policy + source.')),
        source: optional(labelName('Source within policy.', 40)),
        repository: optional(
          objectName(
            "Restore straight from this BackupRepository's catalog (disaster recovery: no Backup or policy needed), with snapshot or sourceName; only this namespace's snapshots.",
          ),
        ),
        snapshot: optional(
          string({
            description: 'With repository: the snapshot id, or a unique prefix of it.',
            minLength: 8,
            maxLength: 64,
            pattern: '^[0-9a-f]+$',
          }),
        ),
        sourceName: optional(
          string({
            description:
              'With repository: the source identity recorded in the snapshots, <namespace>/<policy>/<source> (this namespace); its latest snapshot (taken before `before` when given) is restored.',
            minLength: 1,
            maxLength: 253,
          }),
        ),
        before: optional(
          timestamp(
            'With policy + source: the latest Backup completed before this time. With repository + sourceName: the latest snapshot taken before it.',
          ),
        ),
      },
      {
        description:
          'Which backup: backupName; policy + source (+ before); or repository + snapshot, or repository + sourceName (+ before).',
        rules: [
          {
            rule: '(has(self.backupName) ? 1 : 0) + (has(self.policy) ? 1 : 0) + (has(self.repository) ? 1 : 0) == 1',
            message: 'name exactly one way to pick the backup: backupName, policy with source, or repository',
          },
          {
            rule: 'has(self.policy) == has(self.source)',
            message: 'policy and source go together',
            fieldPath: '.source',
            reason: 'FieldValueRequired',
          },
          {
            rule: '!has(self.repository) || has(self.snapshot) != has(self.sourceName)',
            message: 'with repository, name either snapshot or sourceName',
            fieldPath: '.repository',
          },
          {
            rule: '(!has(self.snapshot) && !has(self.sourceName)) || has(self.repository)',
            message: 'snapshot and sourceName only apply with repository',
            fieldPath: '.repository',
            reason: 'FieldValueRequired',
          },
          {
            rule: '!has(self.before) || has(self.policy) || has(self.sourceName)',
            message: 'before only applies with policy and source, or repository and sourceName',
            fieldPath: '.before',
            reason: 'FieldValueForbidden',
          },
        ],
      },
    ),
    target: object(
      {
        original: optional(
          boolean({
            description: 'Restore over the backed-up source itself. Must be stated explicitly.',
            rules: [{ rule: 'self', message: 'original may only be true; omit it to restore elsewhere' }],
          }),
        ),
        postgres: optional(databaseTarget('PostgreSQL')),
        mysql: optional(databaseTarget('MySQL/MariaDB')),
        volume: optional(
          object(
            {
              claimName: objectName('PersistentVolumeClaim to restore into.'),
              namespace: optional(labelName("Namespace of the claim; defaults to this request's namespace.")),
            },
            { description: 'A volume.' },
          ),
        ),
        database: optional(
          string({ description: 'Which database of a multi-database backup to restore.', maxLength: 63 }),
        ),
        createMissingRoles: optional(
          boolean({
            description:
              'PostgreSQL: create the roles the backup names (owners, grantees, policy roles) that the target server lacks, as NOLOGIN roles without password or attributes. Without it, such a restore fails before writing anything, listing them.',
          }),
        ),
      },
      {
        description: 'Where to restore: the original source (explicitly), or another database or volume.',
        rules: [
          {
            rule: '(has(self.original) ? 1 : 0) + (has(self.postgres) ? 1 : 0) + (has(self.mysql) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1',
            message: 'set exactly one target: original, postgres, mysql or volume',
          },
          {
            rule: '!has(self.createMissingRoles) || !has(self.volume)',
            message: 'createMissingRoles needs a database target',
            fieldPath: '.createMissingRoles',
          },
        ],
      },
    ),
    mode: optional(
      enumOf(['refuse', 'replace'] as const, {
        description: 'What to do if the target is not empty: refuse (default, nothing changes) or replace its content.',
        default: 'refuse',
      }),
    ),
    postRestoreScript: optional(
      labelName(
        'A post-restore script of the policy (spec.restore.postRestoreScripts), by name, run on the restored database before anyone can connect to it, e.g. anonymisation for a QA copy.',
      ),
    ),
    requestedBy: optional(
      string({
        description: 'Who asked for the restore; the admission policy requires it to be the creating user.',
        maxLength: 253,
      }),
    ),
    approvals: optional(
      array(
        object({
          user: string({ maxLength: 253 }),
          groups: optional(
            array(string({ maxLength: 253 }), {
              description:
                "The approver's groups as the API server saw them (the admission policy refuses any the approving user is not in). The operator counts the approval when its user or one of these groups is in the policy's approval rule.",
              maxItems: 64,
            }),
          ),
          comment: optional(string({ maxLength: 1024 })),
        }),
        {
          description: 'Approvals, each added by the approving user (checked by the admission policy).',
          maxItems: 16,
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['user'],
        },
      ),
    ),
  },
  {
    rules: [
      {
        rule: 'self.from == oldSelf.from && self.target == oldSelf.target && self.mode == oldSelf.mode && ((has(self.postRestoreScript) && has(oldSelf.postRestoreScript) && self.postRestoreScript == oldSelf.postRestoreScript) || (!has(self.postRestoreScript) && !has(oldSelf.postRestoreScript)))',
        message: 'only approvals may change after a RestoreRequest is created',
      },
      {
        rule: '(has(self.requestedBy) && has(oldSelf.requestedBy) && self.requestedBy == oldSelf.requestedBy) || (!has(self.requestedBy) && !has(oldSelf.requestedBy))',
        message: 'requestedBy is immutable',
        fieldPath: '.requestedBy',
      },
      {
        rule: '!has(oldSelf.approvals) || (has(self.approvals) && oldSelf.approvals.all(a, self.approvals.exists(b, b.user == a.user)))',
        message: 'approvals can be added, never removed',
        fieldPath: '.approvals',
      },
      {
        rule: '!has(self.from.repository) || !has(self.target.original)',
        message: 'a restore from a repository snapshot has no policy source to call original: name the target',
        fieldPath: '.target.original',
        reason: 'FieldValueForbidden',
      },
      {
        rule: '!has(self.postRestoreScript) || has(self.target.postgres) || has(self.target.mysql) || has(self.target.original)',
        message: 'postRestoreScript needs a database target',
        fieldPath: '.postRestoreScript',
      },
      {
        rule: '!has(self.requestedBy) || !has(self.approvals) || self.approvals.all(a, a.user != self.requestedBy)',
        message: 'the requester cannot approve their own restore',
        fieldPath: '.approvals',
      },
    ],
  },
);

export const restoreRequestStatus = object({
  phase: optional(enumOf(RESTORE_PHASES)),
  conditions: optional(conditions),
  backupName: optional(string({ description: 'The Backup that was resolved.', maxLength: 253 })),
  snapshotId: optional(string({ description: 'The snapshot restored, as the agent resolved it.', maxLength: 128 })),
  snapshotSource: optional(string({ description: 'The source identity recorded in that snapshot.', maxLength: 253 })),
  snapshotTime: optional(timestamp('When that snapshot was taken.')),
  repository: optional(
    string({ description: 'Repository the data was read from (primary or a replica).', maxLength: 253 }),
  ),
  approvedBy: optional(array(string({ maxLength: 253 }), { description: 'Approvals the operator counted.' })),
  approverGroups: optional(
    array(string({ maxLength: 253 }), {
      description:
        "Copied by the operator from the policy's approval rule; the admission policy checks approvers against it.",
      maxItems: 32,
    }),
  ),
  approverUsers: optional(
    array(string({ maxLength: 253 }), { description: 'As approverGroups, for single users.', maxItems: 64 }),
  ),
  approvalsRequired: optional(integer({ minimum: 0 })),
  approvalSummary: optional(string({ description: 'Counted/required, e.g. 1/2.', maxLength: 16 })),
  startTime: optional(timestamp('When the restore started.')),
  completionTime: optional(timestamp('When it ended.')),
  rtoSeconds: optional(integer({ minimum: 0, description: 'Achieved recovery time.' })),
  achievedRTO: optional(string({ description: 'rtoSeconds for people, e.g. 4m10s.', maxLength: 32 })),
  restored: optional(objectCounts('Record counts in the target after the restore.')),
  expected: optional(objectCounts('Record counts of the backup.')),
  jobName: optional(string({ maxLength: 63 })),
  progress: optional(progress),
  error: optional(string({ maxLength: 32768 })),
});

export type RestoreRequestSpec = TypeOf<typeof restoreRequestSpec>;
export type RestoreRequestStatus = TypeOf<typeof restoreRequestStatus>;
