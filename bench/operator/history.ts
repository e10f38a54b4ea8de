// The Backup history the operator benchmark creates before the operator starts: per policy, finished
// Backups spread over its sources, each with the status the Backup controller writes after a run
// (backup/decide.ts recordSuccess and the replica copy): times, bytes, snapshot and chain ids, the
// primary and a replica entry, and per-table (per-directory) record counts.
import { createHash, randomUUID } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { BackupStatus } from '../../src/api/backup.ts';
import type { Backup } from '../../src/api/kinds.ts';
import { SNAPSHOT_FINALIZER } from '../../src/operator/backup/decide.ts';
import { backupJobName, replicaJobName } from '../../src/operator/backup/job.ts';
import { backupName } from '../../src/operator/backuppolicy/schedule.ts';
import { LABELS } from '../../src/operator/jobs/labels.ts';
import { getRaw, putAll, storedJson, storedKey } from './etcd.ts';
import { type BulkClient, bulkClient } from './http.ts';
import { GROUP, VERSION } from './objects.ts';

/** The quiet policies' sources (objects.ts): a PostgreSQL database with tens of tables and a volume. */
export const HISTORY_SOURCES = [
  { name: 'shop', objects: 40, prefix: 'public.' },
  { name: 'documents', objects: 12, prefix: 'dir/' },
] as const;

/** Hours between two runs of one source; the first run of each day is a full, the others incrementals. */
const RUN_EVERY_H = 8;
/**
 * One run in this many of the last day fails (a Failed Backup carries no snapshot, objects or
 * repositories). Older failures are not in the history: retention removes a Failed Backup once it is
 * more than 24 h old and a newer run succeeded.
 */
const FAIL_EVERY = 8;
const FAILURES_WITHIN = 24 / RUN_EVERY_H;
const HOUR = 3_600_000;

export interface HistoryItem {
  namespace: string;
  policy: string;
  source: (typeof HISTORY_SOURCES)[number];
  /** 0 = the newest run of that source. */
  age: number;
}

/** `perPolicy` Backups of every policy, round robin over the sources, newest first per source. */
export function historyItems(policies: { namespace: string; name: string }[], perPolicy: number): HistoryItem[] {
  return policies.flatMap(({ namespace, name }) =>
    Array.from({ length: perPolicy }, (_, i) => ({
      namespace,
      policy: name,
      source: HISTORY_SOURCES[i % HISTORY_SOURCES.length] as (typeof HISTORY_SOURCES)[number],
      age: Math.floor(i / HISTORY_SOURCES.length),
    })),
  );
}

const hex = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);

/** The schedule slot of a run: `age` runs before the last whole 8-hour slot before `now`. */
function slotOf(item: HistoryItem, now: Date): Date {
  const last = Math.floor(now.getTime() / (RUN_EVERY_H * HOUR)) * RUN_EVERY_H * HOUR;
  return new Date(last - item.age * RUN_EVERY_H * HOUR);
}

const isFull = (slot: Date) => slot.getUTCHours() < RUN_EVERY_H;

export function historyBackup(item: HistoryItem, now: Date): Backup {
  const slot = slotOf(item, now);
  const type = isFull(slot) ? 'full' : 'incremental';
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Backup',
    metadata: {
      name: backupName(item.policy, item.source.name, type, slot),
      namespace: item.namespace,
      labels: { [LABELS.policy]: item.policy, [LABELS.source]: item.source.name },
      finalizers: [SNAPSHOT_FINALIZER],
    },
    spec: { policy: item.policy, source: item.source.name, type, scheduledTime: slot.toISOString() },
  };
}

/** The status the Backup controller would have written for this run (created: the Backup as stored). */
export function historyStatus(item: HistoryItem, created: Backup, now: Date): BackupStatus {
  const slot = slotOf(item, now);
  const key = `${created.metadata.namespace}/${created.metadata.name}`;
  const start = new Date(slot.getTime() + 2_000);
  const end = new Date(start.getTime() + 60_000 + (Number.parseInt(hex(key, 4), 16) % 600) * 1000);
  const jobName = backupJobName(created);
  const seed = Number.parseInt(hex(`${key}/size`, 8), 16);
  const condition = (status: 'True' | 'False', reason: string, message: string) => ({
    type: 'Succeeded',
    status,
    reason,
    message,
    observedGeneration: 1,
    lastTransitionTime: end.toISOString(),
  });
  // The same run fails on every benchmark: a hash of the name, not a random number.
  if (item.age < FAILURES_WITHIN && seed % FAIL_EVERY === 0) {
    const error = `Job ${jobName} failed: connection to ${item.source.name} refused (bench history)`;
    return {
      phase: 'Failed',
      conditions: [condition('False', 'JobFailed', error)],
      startTime: start.toISOString(),
      completionTime: end.toISOString(),
      jobName,
      error,
    };
  }
  const snapshotId = hex(`${key}/snapshot`, 64);
  const chainSlot = new Date(Math.floor(slot.getTime() / (24 * HOUR)) * 24 * HOUR);
  const logicalBytes = 1_000_000_000 + (seed % 1_000_000_000);
  const replica = {
    repository: 'replica',
    role: 'replica' as const,
    state: 'Succeeded' as const,
    snapshotId: hex(`${key}/replica`, 64),
    completionTime: new Date(end.getTime() + 90_000).toISOString(),
    attempts: 1,
    jobName: replicaJobName(created, 'replica'),
  };
  return {
    phase: 'Succeeded',
    conditions: [condition('True', 'Completed', `snapshot ${snapshotId.slice(0, 12)} in primary`)],
    startTime: start.toISOString(),
    completionTime: end.toISOString(),
    snapshotId,
    chainId: hex(`${created.metadata.namespace}/${item.policy}/${item.source.name}/${chainSlot.toISOString()}`, 64),
    logicalBytes,
    uploadedBytes: Math.floor(logicalBytes / (isFull(slot) ? 3 : 50)),
    size: `${(logicalBytes / 1024 ** 3).toFixed(1)} GiB`,
    objects: Array.from({ length: item.source.objects }, (_, i) => ({
      name: `${item.source.prefix}${item.source.name}_table_${String(i).padStart(2, '0')}`,
      records: (seed >>> (i % 16)) % 5_000_000,
    })),
    repositories: [
      {
        repository: 'primary',
        role: 'primary',
        state: 'Succeeded',
        snapshotId,
        completionTime: end.toISOString(),
      },
      replica,
    ],
    jobName,
  };
}

/** A run time as the API server records metadata times: RFC 3339, whole seconds. */
const wholeSeconds = (time: Date) => `${time.toISOString().slice(0, 19)}Z`;

/** metadata.managedFields as the API server records them (the operator's Backup type leaves them out). */
type ManagedFields = { subresource?: string; time?: string; [field: string]: unknown }[];

/** A Backup's shape: what decides the field set its managedFields record (source, Succeeded or Failed). */
const shapeOf = (item: HistoryItem, status: BackupStatus) => `${item.source.name}/${status.phase}`;

/**
 * The Backup of `item` as the API server stores it after a create and a /status replace: created at its
 * slot (the operator creates a run when it is due), its status written when the run completed, with the
 * managedFields entries such writes leave (`fields`: a witness's entries of the same shape).
 */
function storedBackup(item: HistoryItem, now: Date, uid: string, fields: ManagedFields) {
  const backup = historyBackup(item, now);
  const created = { ...backup, metadata: { ...backup.metadata, uid } };
  const status = historyStatus(item, created, now);
  const createdAt = wholeSeconds(slotOf(item, now));
  const completedAt = status.completionTime ? wholeSeconds(new Date(status.completionTime)) : createdAt;
  return {
    ...backup,
    metadata: {
      ...created.metadata,
      creationTimestamp: createdAt,
      generation: 1,
      managedFields: fields.map((entry) => ({ ...entry, time: entry.subresource ? completedAt : createdAt })),
    },
    status,
  };
}

/**
 * Creates every Backup of the history, with `concurrency` requests in flight. One Backup of each shape
 * (a witness) is created through the API server (a POST, then a PUT of /status); its bytes in etcd must
 * equal, byte for byte, what storedBackup builds for it given its uid and times, or the run stops. Then
 * every Backup, witnesses included (so that all are created at their slot), is written straight into etcd
 * (etcd.ts): through the API server the history ran at ~22 Backups/s here, 2.5 h for 200,000. Finally one
 * seeded Backup of each shape is read back through the API server and compared with what was stored, and
 * a LIST counts them. Resolves with the number of Backups the API server serves.
 */
export async function createHistory(
  kc: k8s.KubeConfig,
  etcd: string,
  items: HistoryItem[],
  concurrency: number,
  now: Date,
  onProgress: (done: number) => void,
): Promise<number> {
  const client = bulkClient(kc, concurrency);
  const collection = (namespace: string) => `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/backups`;
  const key = (namespace: string, name: string) => storedKey(GROUP, 'backups', namespace, name);
  try {
    const uids: string[] = items.map(() => randomUUID());
    const shapes = items.map((item) => shapeOf(item, historyStatus(item, historyBackup(item, now), now)));
    const fieldsOf = new Map<string, ManagedFields>();
    for (const shape of new Set(shapes)) {
      const i = shapes.indexOf(shape);
      const item = items[i] as HistoryItem;
      const created = await client.send<Backup>('POST', collection(item.namespace), historyBackup(item, now));
      await client.send('PUT', `${collection(item.namespace)}/${created.metadata.name}/status`, {
        ...created,
        status: historyStatus(item, created, now),
      });
      const raw = await getRaw(etcd, key(item.namespace, created.metadata.name as string));
      const fields =
        raw === undefined
          ? undefined
          : (JSON.parse(raw) as { metadata: { managedFields?: ManagedFields } }).metadata.managedFields;
      if (raw === undefined || !fields)
        throw new Error(`witness ${created.metadata.name}: not in etcd, or without managedFields`);
      const seeded = storedBackup(item, now, created.metadata.uid as string, fields);
      // The witness was created now, not at its slot: its own times.
      const rebuilt = {
        ...seeded,
        metadata: { ...seeded.metadata, creationTimestamp: created.metadata.creationTimestamp, managedFields: fields },
      };
      if (storedJson(rebuilt) !== raw)
        throw new Error(
          `witness ${created.metadata.name}: etcd holds\n${raw}the seeding would write\n${storedJson(rebuilt)}`,
        );
      uids[i] = created.metadata.uid as string;
      fieldsOf.set(
        shape,
        fields.map(({ time: _, ...entry }) => entry),
      );
    }
    const entries = function* () {
      for (const [i, item] of items.entries()) {
        const object = storedBackup(item, now, uids[i] as string, fieldsOf.get(shapes[i] as string) as ManagedFields);
        yield { key: key(item.namespace, object.metadata.name as string), value: storedJson(object) };
      }
    };
    let reported = 0;
    await putAll(etcd, entries(), concurrency, (put) => {
      if (put - reported < 20_000) return;
      reported = put;
      onProgress(put);
    });
    // The last Backup of each shape (not its witness, where there are two) as the API server serves it.
    for (const shape of new Set(shapes)) {
      const item = items[shapes.lastIndexOf(shape)] as HistoryItem;
      const name = historyBackup(item, now).metadata.name as string;
      const served = await client.send<Backup>('GET', `${collection(item.namespace)}/${name}`);
      const { resourceVersion: _, ...metadata } = served.metadata;
      const raw = await getRaw(etcd, key(item.namespace, name));
      if (storedJson({ ...served, metadata }) !== raw)
        throw new Error(`seeded ${name}: the API server serves\n${JSON.stringify(served)}\netcd holds\n${raw}`);
    }
    return await countBackups(client);
  } finally {
    client.close();
  }
}

/** Backups the API server lists: a LIST of one, plus its remainingItemCount. */
async function countBackups(client: BulkClient): Promise<number> {
  const page = await client.send<{ items: unknown[]; metadata: { remainingItemCount?: number } }>(
    'GET',
    `/apis/${GROUP}/${VERSION}/backups?limit=1`,
  );
  return page.items.length + (page.metadata.remainingItemCount ?? 0);
}
