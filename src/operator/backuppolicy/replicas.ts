import type { BackupStatus } from '../../api/backup.ts';
import type { BackupPolicyStatus } from '../../api/backuppolicy.ts';
import { parseDuration } from '../../api/duration.ts';
import type { Backup, BackupPolicy } from '../../api/kinds.ts';
import type { ConditionInput } from '../runtime/conditions.ts';

type ReplicaStatus = NonNullable<BackupPolicyStatus['replicas']>[number];
type RepositoryEntry = NonNullable<BackupStatus['repositories']>[number];

export interface ReplicaHealth {
  replicas: ReplicaStatus[];
  /**
   * Per replica repository, the instant its lag counts from (what maxLag is judged against): the
   * stalest source's newest snapshot held there, or for a source with a success but no copy there yet,
   * its oldest successful backup. Absent while no source has succeeded.
   */
  lagSince: Map<string, Date>;
  /** ReplicasHealthy; undefined when the policy has no replicas (the condition is removed). */
  condition?: ConditionInput;
  /** When the verdict changes next by the clock alone (a copy passing maxLag). */
  nextChange?: Date;
}

/** States that end a copy attempt: held (Succeeded) or failed (possibly waiting for its retry). */
const SETTLED = new Set(['Succeeded', 'Failed', 'Retrying']);

const time = (iso: string | undefined) => (iso ? new Date(iso) : undefined);

/**
 * Replica health (R-REPL, R-OBJ), pure: per replica, when its newest copy completed and how fresh the
 * newest snapshot it holds is (times, never ages), and one ReplicasHealthy condition:
 * - False ReplicationFailing when, for some source, the newest settled copy to a replica failed
 *   (also while it waits for a retry: the message names the next attempt), and after that for as long
 *   as no later copy of that source succeeded there: the failure is kept in the replica's lastFailure,
 *   because retention may delete the failed copy's Backup while the replica is still down;
 * - False LagExceeded when a replica's newest snapshot of a source is older than its maxLag, or it has
 *   held no copy for longer than maxLag since the source's oldest successful backup;
 * - Unknown CopyPending while a source's successful backup has no copy in a replica yet (within maxLag),
 *   or nothing succeeded yet;
 * - True otherwise. Without maxLag only failures count.
 * A snapshot's time is its Backup's completion in the primary; a copy only counts while its entry in
 * the Backup's status.repositories is Succeeded (Forgotten copies and Backups being deleted are gone),
 * but a Backup being deleted still tells whether its copy failed.
 */
export function replicaHealth(policy: BackupPolicy, backups: Backup[], now: Date): ReplicaHealth {
  const replicas = policy.spec.replicas ?? [];
  if (replicas.length === 0) return { replicas: [], lagSince: new Map() };
  const failing: string[] = [];
  const lagging: string[] = [];
  const pending: string[] = [];
  const changes: number[] = [];
  const statuses: ReplicaStatus[] = [];
  const lagSince = new Map<string, Date>();

  for (const replica of replicas) {
    const maxLagMs = replica.maxLag ? parseDuration(replica.maxLag) : undefined;
    const status: ReplicaStatus = { repository: replica.repository };
    const previous = policy.status?.replicas?.find((r) => r.repository === replica.repository)?.lastFailure;
    const failures: Failure[] = [];
    let lastCopy: Date | undefined;
    let stalest: Date | undefined;
    let everySourceCopied = true;
    const countLagFrom = (at: Date) => {
      const current = lagSince.get(replica.repository);
      if (!current || at < current) lagSince.set(replica.repository, at);
    };
    let keepPrevious = previous !== undefined && policy.spec.sources.some((s) => s.name === previous.source);
    for (const source of policy.spec.sources) {
      const all = backups
        .filter((b) => b.spec.source === source.name && b.status?.phase === 'Succeeded' && b.status.completionTime)
        .map((b) => ({
          backup: b,
          at: new Date(b.status?.completionTime as string),
          entry: entryOf(b, replica.repository),
        }))
        .sort((a, b) => b.at.getTime() - a.at.getTime());
      const settled = all.find((d) => SETTLED.has(d.entry?.state ?? ''));
      if (settled && settled.entry?.state !== 'Succeeded') {
        const name = settled.backup.metadata.name ?? '';
        // A Backup written before failureTime existed: its completion, a stable time before the failure.
        const seen =
          settled.entry?.failureTime ?? (previous?.backup === name ? previous.time : settled.at.toISOString());
        failing.push(failure(replica.repository, settled));
        failures.push({ backup: name, source: source.name, time: seen, message: settled.entry?.message });
        if (previous?.source === source.name) keepPrevious = false;
      } else if (previous?.source === source.name && all.some((d) => copiedAfter(d.entry, previous.time)))
        keepPrevious = false;
      const done = all.filter((d) => !d.backup.metadata.deletionTimestamp);
      if (done.length === 0) continue;
      const copies = done.filter((d) => d.entry?.state === 'Succeeded');
      for (const c of copies) {
        const copied = time(c.entry?.completionTime) ?? c.at;
        if (!lastCopy || copied > lastCopy) lastCopy = copied;
      }
      const newest = copies[0];
      if (!newest) {
        everySourceCopied = false;
        const since = done[done.length - 1]?.at as Date;
        countLagFrom(since);
        if (maxLagMs !== undefined && now.getTime() > since.getTime() + maxLagMs)
          lagging.push(
            `${replica.repository}: no copy of ${source.name} yet, its oldest snapshot completed ${since.toISOString()}, older than maxLag ${replica.maxLag}`,
          );
        else {
          pending.push(`${replica.repository}: no copy of ${source.name} yet`);
          if (maxLagMs !== undefined) changes.push(since.getTime() + maxLagMs);
        }
        continue;
      }
      if (!stalest || newest.at < stalest) stalest = newest.at;
      countLagFrom(newest.at);
      if (maxLagMs === undefined) continue;
      const passes = newest.at.getTime() + maxLagMs;
      if (now.getTime() > passes)
        lagging.push(
          `${replica.repository}: newest snapshot ${newest.at.toISOString()} (${source.name}) is older than maxLag ${replica.maxLag}`,
        );
      else changes.push(passes);
    }
    if (lastCopy) status.lastCopyTime = lastCopy.toISOString();
    if (stalest && everySourceCopied) status.newestSnapshotTime = stalest.toISOString();
    if (previous && keepPrevious) {
      failing.push(
        `${replica.repository}: copy of ${previous.backup} failed${previous.message ? `: ${previous.message}` : ''} (at ${previous.time}; no copy of ${previous.source} succeeded there since)`,
      );
      failures.push(previous);
    }
    const lastFailure = failures.sort((a, b) => b.time.localeCompare(a.time))[0];
    if (lastFailure) status.lastFailure = lastFailure;
    statuses.push(status);
  }

  // Just past the instant (a timer may fire a millisecond early and miss it by a whole requeue).
  const nextChange = changes.length ? new Date(Math.min(...changes) + 5) : undefined;
  const result = (condition: ConditionInput): ReplicaHealth => ({
    replicas: statuses,
    lagSince,
    condition,
    ...(nextChange ? { nextChange } : {}),
  });
  const type = 'ReplicasHealthy';
  if (failing.length > 0)
    return result({
      type,
      status: 'False',
      reason: 'ReplicationFailing',
      message: [...failing, ...lagging].join('; '),
    });
  if (lagging.length > 0) return result({ type, status: 'False', reason: 'LagExceeded', message: lagging.join('; ') });
  if (pending.length > 0)
    return result({ type, status: 'Unknown', reason: 'CopyPending', message: pending.join('; ') });
  if (statuses.every((s) => !s.lastCopyTime))
    return result({ type, status: 'Unknown', reason: 'CopyPending', message: 'no successful backup to copy yet' });
  const lagRule = replicas.some((r) => r.maxLag) ? ', within maxLag' : '';
  return result({
    type,
    status: 'True',
    reason: 'Replicated',
    message: `every replica holds a copy of each source's newest successful backup${lagRule}`,
  });
}

type Failure = NonNullable<ReplicaStatus['lastFailure']>;

/** A copy held there that completed after `since` (a failure it makes history). */
function copiedAfter(entry: RepositoryEntry | undefined, since: string): boolean {
  return (
    entry?.state === 'Succeeded' &&
    entry.completionTime !== undefined &&
    Date.parse(entry.completionTime) > Date.parse(since)
  );
}

function entryOf(backup: Backup, repository: string): RepositoryEntry | undefined {
  return backup.status?.repositories?.find((r) => r.repository === repository);
}

function failure(repository: string, settled: { backup: Backup; entry?: RepositoryEntry }): string {
  const { entry } = settled;
  const attempts = entry?.attempts ? ` (attempt ${entry.attempts})` : '';
  const retry = entry?.nextRetryTime ? `; next attempt at ${entry.nextRetryTime}` : '';
  return `${repository}: copy of ${settled.backup.metadata.name} failed${attempts}${entry?.message ? `: ${entry.message}` : ''}${retry}`;
}
