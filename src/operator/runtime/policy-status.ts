import type { BackupPolicyStatus, RestoreDrill, Source, SourceStatus } from '../../api/backuppolicy.ts';
import type { BackupPolicy } from '../../api/kinds.ts';

export type DrillEngine = 'postgres' | 'mysql';
export type DrillServer = NonNullable<RestoreDrill['postgres']>;
export type ScratchVolume = NonNullable<RestoreDrill['volume']>;
/** Where a source's drills restore: a drill server of its engine, or a scratch PVC. */
export type DrillTarget =
  | { kind: 'database'; engine: DrillEngine; server: DrillServer }
  | { kind: 'volume'; scratch: ScratchVolume };

/** The fields of a policy source's status the drill controller writes; the policy controller keeps them. */
const DRILL_FIELDS = ['lastDrill', 'lastDrillSuccessTime', 'drills'] as const;
type DrillField = (typeof DRILL_FIELDS)[number];
export type DrillFields = Pick<SourceStatus, DrillField>;

/** The fields of a policy source's status other controllers write: the drill controller's, the audit controller's lastAudit. */
const FOREIGN_FIELDS = [...DRILL_FIELDS, 'lastAudit'] as const;

/**
 * `next` (the policy controller's status) with the fields other controllers write (FOREIGN_FIELDS)
 * of each source as `current` has them: neither writer drops what the other wrote.
 */
export function keepForeignFields(
  current: BackupPolicyStatus | undefined,
  next: BackupPolicyStatus,
): BackupPolicyStatus {
  const before = new Map((current?.sources ?? []).map((s) => [s.name, s]));
  return {
    ...next,
    ...(next.sources ? { sources: next.sources.map((s) => ({ ...s, ...foreignFieldsOf(before.get(s.name)) })) } : {}),
  };
}

/** `current` with the drill fields of the named sources replaced (a source not listed yet is added). */
export function withDrillFields(
  current: BackupPolicyStatus | undefined,
  updates: Map<string, DrillFields>,
): BackupPolicyStatus {
  const sources = [...(current?.sources ?? [])];
  for (const [name, fields] of updates) {
    const i = sources.findIndex((s) => s.name === name);
    const rest = Object.fromEntries(
      Object.entries(i >= 0 ? (sources[i] ?? { name }) : { name }).filter(
        ([k]) => !(DRILL_FIELDS as readonly string[]).includes(k),
      ),
    ) as SourceStatus;
    const updated = { ...rest, ...fields };
    if (i >= 0) sources[i] = updated;
    else sources.push(updated);
  }
  return { ...current, sources };
}

function foreignFieldsOf(status: SourceStatus | undefined): Partial<SourceStatus> {
  if (!status) return {};
  return Object.fromEntries(FOREIGN_FIELDS.filter((k) => status[k] !== undefined).map((k) => [k, status[k]]));
}

/**
 * Where drills of a source restore; undefined for one they do not cover (a database source without
 * a drill server of its engine). Volume sources need no setting: a scratch PVC the drill creates.
 */
export function drillTarget(policy: BackupPolicy, source: Source): DrillTarget | undefined {
  const drill = policy.spec.verification?.restoreDrill;
  if (!drill) return undefined;
  if (source.postgres && drill.postgres) return { kind: 'database', engine: 'postgres', server: drill.postgres };
  if (source.mysql && drill.mysql) return { kind: 'database', engine: 'mysql', server: drill.mysql };
  if (source.volume) return { kind: 'volume', scratch: drill.volume ?? {} };
  return undefined;
}
