import { writeFileSync } from 'node:fs';
import type { Snapshot } from '../repository/snapshot.ts';
import type { ObjectCount } from '../sources/source.ts';
import type { DrillReport } from './tasks/drill.ts';

/** Kubernetes keeps at most 4096 bytes of a termination message. */
export const TERMINATION_MESSAGE_LIMIT = 4096;

/** What an agent Job reports to the operator, as JSON in its termination message. */
export interface AgentResult {
  ok: boolean;
  snapshotId?: string;
  chainId?: string;
  type?: 'full' | 'incremental';
  logicalBytes?: number;
  uploadedBytes?: number;
  durationMs?: number;
  /** restore: the source identity and time of the snapshot restored (it may have been resolved by source). */
  snapshotSource?: string;
  snapshotTime?: string;
  /** catalog: how many snapshots were written to the ConfigMap. */
  snapshots?: number;
  objects?: ObjectCount[];
  /** True when `objects` was cut to fit the message. */
  objectsTruncated?: boolean;
  skipped?: { path: string; reason: string }[];
  /** restore: what the user should know although it succeeded (counts that differ from the backup's, cleanups). */
  warnings?: string[];
  error?: { code: string; message: string };
  /** probe: the repository's id, whether this probe created it, and the bytes stored. */
  repositoryId?: string;
  initialized?: boolean;
  storedBytes?: number;
  /** drill: what it checked, its RTO, what it cleaned up (present whenever the drill task itself ended). */
  drill?: DrillReport;
}

export function backupResult(snapshot: Snapshot): AgentResult {
  return {
    ok: true,
    snapshotId: snapshot.id,
    chainId: snapshot.chainId,
    type: snapshot.type,
    logicalBytes: snapshot.summary.logicalBytes,
    uploadedBytes: snapshot.summary.uploadedBytes,
    durationMs: snapshot.summary.durationMs,
    objects: snapshot.objects ?? [],
    skipped: snapshot.skipped ?? [],
  };
}

/** Serialises a result into at most `limit` bytes, dropping skipped entries and then objects from the end. */
export function encodeResult(result: AgentResult, limit = TERMINATION_MESSAGE_LIMIT): string {
  let current = { ...result };
  let text = JSON.stringify(current);
  while (Buffer.byteLength(text) > limit) {
    if (current.skipped?.length) current = { ...current, skipped: current.skipped.slice(0, -1) };
    else if (current.warnings?.some((w) => w.length > 300))
      current = { ...current, warnings: current.warnings.map((w) => (w.length > 300 ? `${w.slice(0, 297)}...` : w)) };
    else if (current.objects?.length)
      current = { ...current, objects: current.objects.slice(0, -1), objectsTruncated: true };
    else if (current.error)
      current = { ...current, error: { ...current.error, message: current.error.message.slice(0, limit / 2) } };
    else break;
    text = JSON.stringify(current);
  }
  return text;
}

export function writeResult(path: string, result: AgentResult): void {
  writeFileSync(path, encodeResult(result));
}
