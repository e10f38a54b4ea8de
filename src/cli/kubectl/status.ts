import type { SourceStatus } from '../../api/backuppolicy.ts';
import { durationSeconds, formatDuration } from '../../api/duration.ts';
import type { BackupPolicy } from '../../api/kinds.ts';

/** "Is my data backed up, and when": one source of one policy, from the status the operator writes. */
export interface SourceStatusRow {
  namespace: string;
  policy: string;
  source: string;
  /** Completion of the newest successful Backup; absent: never. */
  lastSuccessTime?: string;
  lastSuccessfulBackup?: string;
  /** Seconds since the last success; absent when the source never succeeded. */
  rpoSeconds?: number;
  rpoTargetSeconds?: number;
  /** The policy's RPOMet condition as the operator decided it (True, False), absent without a target. */
  rpoMet?: string;
  nextRunTime?: string;
  suspended: boolean;
  replicas: ReplicaLag[];
  /** Restore drills: not configured, the newest drill's result and RTO, or the operator's Verification condition reason. */
  drill: string;
}

export interface ReplicaLag {
  repository: string;
  /** Age of the newest snapshot held there; absent while none is. */
  lagSeconds?: number;
  maxLagSeconds?: number;
}

const seconds = (from: string, now: Date) => Math.max(0, Math.floor((now.getTime() - Date.parse(from)) / 1000));

/** One row per source the policy declares, in spec order (a source without status yet shows as never). */
export function statusRows(policy: BackupPolicy, now: Date): SourceStatusRow[] {
  const status = policy.status ?? {};
  const conditions = status.conditions ?? [];
  const rpoMet = conditions.find((c) => c.type === 'RPOMet')?.status;
  const rpoTarget = durationSeconds(policy.spec.objectives?.rpo);
  const maxLags = new Map((policy.spec.replicas ?? []).map((r) => [r.repository, durationSeconds(r.maxLag)]));
  const replicas: ReplicaLag[] = (policy.spec.replicas ?? []).map((r) => {
    const held = status.replicas?.find((s) => s.repository === r.repository)?.newestSnapshotTime;
    const maxLag = maxLags.get(r.repository);
    return {
      repository: r.repository,
      ...(held ? { lagSeconds: seconds(held, now) } : {}),
      ...(maxLag !== undefined ? { maxLagSeconds: maxLag } : {}),
    };
  });
  return policy.spec.sources.map((source) => {
    const s = status.sources?.find((x) => x.name === source.name);
    return {
      namespace: policy.metadata.namespace ?? '',
      policy: policy.metadata.name ?? '',
      source: source.name,
      ...(s?.lastSuccessTime
        ? { lastSuccessTime: s.lastSuccessTime, rpoSeconds: seconds(s.lastSuccessTime, now) }
        : {}),
      ...(s?.lastSuccessfulBackup ? { lastSuccessfulBackup: s.lastSuccessfulBackup } : {}),
      ...(rpoTarget !== undefined ? { rpoTargetSeconds: rpoTarget } : {}),
      ...(rpoMet ? { rpoMet } : {}),
      ...(s?.nextRunTime ? { nextRunTime: s.nextRunTime } : {}),
      suspended: policy.spec.schedule.suspend === true,
      replicas,
      drill: drillState(policy, s),
    };
  });
}

function drillState(policy: BackupPolicy, source: SourceStatus | undefined): string {
  if (!policy.spec.verification?.restoreDrill) return 'none';
  const last = source?.lastDrill;
  if (last) return `${last.result}${last.rtoSeconds !== undefined ? ` rto=${last.rtoSeconds}s` : ''}`;
  return policy.status?.conditions?.find((c) => c.type === 'Verification')?.reason ?? 'Unknown';
}

/** The table people read: ages and durations kubectl-style, "-" for what does not apply. */
export function statusTable(rows: SourceStatusRow[], now: Date, withNamespace: boolean): string[][] {
  const age = (s: number) => formatDuration(s * 1000);
  const header = [
    'POLICY',
    'SOURCE',
    'LAST SUCCESS',
    'RPO',
    'RPO TARGET',
    'RPO MET',
    'REPLICA LAG',
    'NEXT RUN',
    'DRILL',
  ];
  const body = rows.map((r) => [
    r.policy,
    r.source,
    r.lastSuccessTime ? `${age(r.rpoSeconds ?? 0)} ago` : 'never',
    r.rpoSeconds !== undefined ? age(r.rpoSeconds) : 'never',
    r.rpoTargetSeconds !== undefined ? age(r.rpoTargetSeconds) : '-',
    r.rpoMet === 'True' ? 'yes' : r.rpoMet === 'False' ? 'NO' : '-',
    r.replicas.length
      ? r.replicas
          .map(
            (l) =>
              `${l.repository}=${l.lagSeconds !== undefined ? age(l.lagSeconds) : 'none'}${l.maxLagSeconds !== undefined ? `/${age(l.maxLagSeconds)}` : ''}`,
          )
          .join(',')
      : '-',
    r.suspended
      ? 'suspended'
      : r.nextRunTime
        ? Date.parse(r.nextRunTime) > now.getTime()
          ? `in ${age(Math.ceil((Date.parse(r.nextRunTime) - now.getTime()) / 1000))}`
          : 'due'
        : '-',
    r.drill,
  ]);
  return withNamespace
    ? [['NAMESPACE', ...header], ...body.map((b, i) => [rows[i]?.namespace ?? '', ...b])]
    : [header, ...body];
}
