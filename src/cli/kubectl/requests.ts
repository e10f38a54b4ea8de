import { API_GROUP_VERSION } from '../../api/common.ts';
import type { Backup, BackupPolicy, RestoreRequest } from '../../api/kinds.ts';
import { TidemarkError } from '../../errors.ts';
import { LABELS } from '../../operator/jobs/labels.ts';
import { labelValue } from '../../operator/runtime/labels.ts';

/** An object to create under a name the API server completes (metadata.generateName). */
export type Unnamed<T extends { metadata: object }> = Omit<T, 'metadata'> & {
  metadata: T['metadata'] & { generateName: string };
};

/**
 * An on-demand Backup of one source, labelled like the scheduled ones (so selectors and retention see
 * it) and without spec.scheduledTime, which is what marks it on-demand. The API server picks the name's tail.
 */
export function onDemandBackup(policy: BackupPolicy, source: string, type: 'full' | 'incremental'): Unnamed<Backup> {
  const name = policy.metadata.name ?? '';
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'Backup',
    metadata: {
      // The server cuts a generateName to 58 characters before its 5 random ones.
      generateName: `${name}-${source}-now-`.slice(0, 58),
      namespace: policy.metadata.namespace ?? '',
      labels: { [LABELS.policy]: labelValue(name), [LABELS.source]: labelValue(source) },
    },
    spec: { policy: name, source, type },
  };
}

/** The sources of `policy` a command names: one (which must exist), or all of them. */
export function pickSources(policy: BackupPolicy, source: string | undefined): string[] {
  const names = policy.spec.sources.map((s) => s.name);
  if (source === undefined) return names;
  if (!names.includes(source))
    throw new TidemarkError(
      'NotFound',
      `BackupPolicy ${policy.metadata.namespace}/${policy.metadata.name} has no source ${source} (it has ${names.join(', ')})`,
    );
  return [source];
}

export interface RestoreFlags {
  policy?: string;
  source?: string;
  backup?: string;
  before?: string;
  toOriginal?: boolean;
  toPostgres?: string;
  toMysql?: string;
  toVolume?: string;
  database?: string;
  mode?: string;
  script?: string;
  createMissingRoles?: boolean;
}

/**
 * A RestoreRequest from command-line flags; every mistake is named before anything is asked of the
 * cluster. `requestedBy` is added once the API server has said who the caller is.
 */
export function restoreRequest(namespace: string, flags: RestoreFlags, requestedBy?: string): Unnamed<RestoreRequest> {
  const invalid = (message: string) => new TidemarkError('InvalidArgument', message);
  if ((flags.backup === undefined) === (flags.policy === undefined))
    throw invalid('name what to restore: --policy with --source (latest, or --before a time), or --backup');
  if (flags.policy !== undefined && flags.source === undefined)
    throw invalid('--policy needs --source (the policy source to restore)');
  if (flags.backup !== undefined && (flags.source !== undefined || flags.before !== undefined))
    throw invalid('--backup names one Backup: leave out --source and --before');
  let before: string | undefined;
  if (flags.before !== undefined) {
    const time = Date.parse(flags.before);
    if (Number.isNaN(time))
      throw invalid(`--before ${flags.before} is not a time (use RFC 3339, e.g. 2026-03-30T01:00:00Z)`);
    before = new Date(time).toISOString();
  }
  const mode = flags.mode ?? 'refuse';
  if (mode !== 'refuse' && mode !== 'replace') throw invalid(`--mode ${mode}: use refuse or replace`);

  const targets = [
    flags.toOriginal ? { original: true as const } : undefined,
    flags.toPostgres !== undefined ? { postgres: databaseTarget('--to-postgres', flags.toPostgres) } : undefined,
    flags.toMysql !== undefined ? { mysql: databaseTarget('--to-mysql', flags.toMysql) } : undefined,
    flags.toVolume !== undefined ? { volume: { claimName: flags.toVolume } } : undefined,
  ].filter((t) => t !== undefined);
  if (targets.length !== 1)
    throw invalid('name exactly one target: --to-original, --to-postgres, --to-mysql or --to-volume');
  const from = flags.backup ?? flags.policy ?? '';
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'RestoreRequest',
    metadata: { generateName: `restore-${from}-`.slice(0, 58), namespace },
    spec: {
      from:
        flags.backup !== undefined
          ? { backupName: flags.backup }
          : { policy: flags.policy as string, source: flags.source as string, ...(before ? { before } : {}) },
      target: {
        ...targets[0],
        ...(flags.database !== undefined ? { database: flags.database } : {}),
        ...(flags.createMissingRoles ? { createMissingRoles: true } : {}),
      },
      mode,
      ...(flags.script !== undefined ? { postRestoreScript: flags.script } : {}),
      ...(requestedBy !== undefined ? { requestedBy } : {}),
    },
  };
}

/** `<connection Secret>/<database>`, e.g. `pg-qa/orders_copy`. */
function databaseTarget(flag: string, value: string) {
  const [secret, database, ...rest] = value.split('/');
  if (!secret || !database || rest.length > 0)
    throw new TidemarkError('InvalidArgument', `${flag} ${value}: use <connection Secret>/<database>`);
  return { connectionSecret: { name: secret }, database };
}

/**
 * The JSON patch that adds `user`'s approval: appended (never replacing others'), recording the groups
 * of theirs the request's approver rule names, as the admission policy requires of a group approver.
 */
export function approvalPatch(
  request: RestoreRequest,
  me: { user: string; groups: string[] },
  comment: string | undefined,
): object[] {
  const ruleGroups = new Set(request.status?.approverGroups ?? []);
  const groups = me.groups.filter((g) => ruleGroups.has(g));
  const approval = {
    user: me.user,
    ...(groups.length ? { groups } : {}),
    ...(comment !== undefined ? { comment } : {}),
  };
  return request.spec.approvals?.length
    ? [{ op: 'add', path: '/spec/approvals/-', value: approval }]
    : [{ op: 'add', path: '/spec/approvals', value: [approval] }];
}
