import type { ChainId, ChunkId, SnapshotId } from './format.ts';

/** `snapshots/<id>`: one backup (encrypted JSON). Written last: a snapshot exists only once all its data does. */
export interface Snapshot {
  version: 1;
  id: SnapshotId;
  /** When the backup started (ISO 8601). */
  time: string;
  hostname: string;
  /** What was backed up, without credentials: `file:///data`, `postgresql://host:5432/app`, `stdin`. */
  source: string;
  type: 'full' | 'incremental';
  /** A full backup starts a chain; its incrementals share chunks only within it. */
  chainId: ChainId;
  parent?: SnapshotId;
  tags: string[];
  /** The root tree. A stream backup is a tree with one file entry per stream. */
  root: ChunkId;
  summary: SnapshotSummary;
  /**
   * Record counts per object, supplied by the caller (rows per table, files per directory); database
   * backups add per table a checksum, a key range and a newest timestamp (docs: "Table statistics").
   */
  objects?: {
    name: string;
    records: number;
    checksum?: string;
    key?: { column: string; min: string; max: string };
    newest?: { column: string; value: string };
  }[];
  /** What could not be backed up, and why (vanished files, unreadable paths). */
  skipped?: { path: string; reason: string }[];
  /** File metadata this snapshot does not keep exactly, when any (tree backups; docs: "File metadata"). */
  lossy?: string[];
}

export interface SnapshotSummary {
  files: number;
  dirs: number;
  /** Bytes read from the source. */
  logicalBytes: number;
  /** Chunks this snapshot references, and how many this run stored anew. */
  chunks: number;
  newChunks: number;
  /** Plaintext bytes of the new chunks, and the bytes of the packs uploaded. */
  newBytes: number;
  uploadedBytes: number;
  durationMs: number;
}

/** Newest first. */
export function byTimeDescending(a: Snapshot, b: Snapshot): number {
  return b.time.localeCompare(a.time) || b.id.localeCompare(a.id);
}
