import type { Snapshot } from '../../repository/snapshot.ts';
import type { ObjectCount, Skipped } from '../../sources/source.ts';
import { runBackup } from '../run-backup.ts';
import { oneOf, required, SOURCE_ENV } from './env.ts';
import type { AgentTask } from './task.ts';

/**
 * `backup`: one source (SOURCE_ENV, written by the operator's sourceAccess) into the repository, as a
 * full snapshot or an incremental one continuing the source's latest. Fails SourceUnavailable (the
 * source cannot be read), Locked, or a storage code (Transient, AccessDenied, WrongKey, ...).
 */
const ENV = {
  type: 'TIDEMARK_BACKUP_TYPE',
  /** The source's identity in the repository, `<namespace>/<policy>/<source>` (every volume is mounted at /data). */
  sourceName: 'TIDEMARK_SOURCE_NAME',
} as const;

export type BackupType = 'full' | 'incremental';

export interface BackupInput {
  sourceUrl: string;
  sourceName?: string;
  allDatabases: boolean;
  type: BackupType;
  excludes: string[];
}

export interface BackupResult {
  snapshotId: string;
  chainId: string;
  type: BackupType;
  logicalBytes: number;
  uploadedBytes: number;
  durationMs: number;
  objects: ObjectCount[];
  /** True when `objects` was cut to fit the termination message. */
  objectsTruncated?: boolean;
  skipped: Skipped[];
}

export const backup: AgentTask<'backup', BackupInput, BackupResult, { type: BackupType; sourceName: string }> = {
  name: 'backup',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) => [
    { name: ENV.type, value: job.type },
    { name: ENV.sourceName, value: job.sourceName },
  ],
  input: (env) => {
    const sourceName = env[ENV.sourceName];
    const excludes = env[SOURCE_ENV.excludes];
    return {
      sourceUrl: required(env, SOURCE_ENV.url),
      ...(sourceName ? { sourceName } : {}),
      allDatabases: env[SOURCE_ENV.allDatabases] === 'true',
      type: oneOf(env, ENV.type, ['full', 'incremental'], 'full'),
      excludes: excludes ? (JSON.parse(excludes) as string[]) : [],
    };
  },
  run: async (input, { env, repository, onProgress }) =>
    backupResult(await runBackup({ ...input, repository: repository(), env, onProgress })),
};

function backupResult(snapshot: Snapshot): BackupResult {
  return {
    snapshotId: snapshot.id,
    chainId: snapshot.chainId,
    type: snapshot.type,
    logicalBytes: snapshot.summary.logicalBytes,
    uploadedBytes: snapshot.summary.uploadedBytes,
    durationMs: snapshot.summary.durationMs,
    // Only name and records: checksums and ranges stay in the snapshot (the message holds 4 KiB).
    objects: (snapshot.objects ?? []).map(({ name, records }) => ({ name, records })),
    skipped: snapshot.skipped ?? [],
  };
}
