import { readFileSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import type { PostRestoreScript } from '../../api/backuppolicy.ts';
import type { ObjectCount, RestoreMode, ScriptRole, Skipped } from '../../sources/source.ts';
import { interruptible } from '../interrupt.ts';
import { runRestore } from '../run-restore.ts';
import { oneOf, required, TARGET_ENV } from './env.ts';
import { chosenSnapshot, readSnapshotSelection, type SnapshotSelection, snapshotEnv } from './snapshot.ts';
import type { AgentTask } from './task.ts';

/**
 * `restore`: one snapshot (snapshot.ts) into the target (TARGET_ENV, written by the operator's
 * targetAccess), refusing a target that is a live source (TIDEMARK_LIVE_SOURCE_<i>_*, see
 * sources/live-source.ts), then the post-restore SQL. SIGTERM aborts it and cleans up (Interrupted).
 * Fails InvalidArgument (a target that is not empty, a live source, a snapshot of another namespace),
 * NotFound, Corrupt, SourceUnavailable (the target server), or a storage code: the operator falls back
 * to a replica on some of them.
 */
const ENV = {
  mode: 'TIDEMARK_RESTORE_MODE',
  /** Which database of a multi-database snapshot. */
  database: 'TIDEMARK_DATABASE',
  createMissingRoles: 'TIDEMARK_CREATE_MISSING_ROLES',
  /** The SQL itself (not secret; kept out of argv), or a file holding it. */
  postRestoreSQL: 'TIDEMARK_POST_RESTORE_SQL',
  postRestoreSQLFile: 'TIDEMARK_POST_RESTORE_SQL_FILE',
  /** The role the post-restore SQL runs as (same server as the target); absent: the restoring user. */
  scriptUser: 'TIDEMARK_SCRIPT_USER',
  scriptPassword: 'TIDEMARK_SCRIPT_PASSWORD',
} as const;

export interface RestoreInput {
  snapshot: SnapshotSelection;
  targetUrl: string;
  mode: RestoreMode;
  database?: string;
  postRestoreSQL?: string;
  scriptRole?: ScriptRole;
  createMissingRoles: boolean;
}

export interface RestoreJobInput {
  snapshot: SnapshotSelection;
  mode: RestoreMode;
  database?: string | undefined;
  createMissingRoles?: boolean | undefined;
  /** The policy's post-restore script (never the request's). */
  script?: PostRestoreScript | undefined;
}

export interface RestoreResult {
  /** The snapshot restored, its source identity and time (it may have been resolved by source). */
  snapshotId: string;
  snapshotSource: string;
  snapshotTime: string;
  durationMs: number;
  /** Counts read back from the target. */
  objects: ObjectCount[];
  objectsTruncated?: boolean;
  skipped: Skipped[];
  /** What the user should know although it succeeded (counts that differ from the backup's, cleanups). */
  warnings?: string[];
}

export const restore: AgentTask<'restore', RestoreInput, RestoreResult, RestoreJobInput> = {
  name: 'restore',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) => [
    ...snapshotEnv(job.snapshot),
    { name: ENV.mode, value: job.mode },
    ...(job.database ? [{ name: ENV.database, value: job.database }] : []),
    ...(job.createMissingRoles ? [{ name: ENV.createMissingRoles, value: 'true' }] : []),
    ...scriptEnv(job.script),
  ],
  input: (env) => {
    const sql = env[ENV.postRestoreSQL];
    const sqlFile = env[ENV.postRestoreSQLFile];
    const scriptUser = env[ENV.scriptUser];
    const database = env[ENV.database];
    return {
      snapshot: readSnapshotSelection(env),
      targetUrl: required(env, TARGET_ENV),
      mode: oneOf(env, ENV.mode, ['new', 'replace'], 'new'),
      ...(database ? { database } : {}),
      ...(sql ? { postRestoreSQL: sql } : sqlFile ? { postRestoreSQL: readFileSync(sqlFile, 'utf8') } : {}),
      ...(scriptUser ? { scriptRole: { user: scriptUser, password: env[ENV.scriptPassword] ?? '' } } : {}),
      createMissingRoles: env[ENV.createMissingRoles] === 'true',
    };
  },
  run: async ({ snapshot: selection, ...input }, { env, repository, onProgress }) => {
    const repo = await repository();
    const snapshot = await chosenSnapshot(repo, selection);
    const outcome = await interruptible(input.targetUrl, (signal) =>
      runRestore({ ...input, repository: repo, snapshot, env, onProgress, ...(signal ? { signal } : {}) }),
    );
    return {
      snapshotId: snapshot.id,
      snapshotSource: snapshot.source,
      snapshotTime: snapshot.time,
      durationMs: outcome.durationMs,
      objects: outcome.restored,
      skipped: outcome.skipped,
      ...(outcome.warnings.length ? { warnings: outcome.warnings } : {}),
    };
  },
};

/**
 * The post-restore script and, unless the policy opted into the restore user, the role it runs as:
 * the username and password of its own connection Secret (the agent connects as that role).
 */
function scriptEnv(script: PostRestoreScript | undefined): k8s.V1EnvVar[] {
  if (!script) return [];
  const secret = script.runAs?.connectionSecret.name;
  const fromSecret = (name: string, key: string): k8s.V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: secret ?? '', key } },
  });
  return [
    { name: ENV.postRestoreSQL, value: script.sql },
    ...(secret ? [fromSecret(ENV.scriptUser, 'username'), fromSecret(ENV.scriptPassword, 'password')] : []),
  ];
}
