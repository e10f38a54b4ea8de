import { readFileSync } from 'node:fs';
import { isCode, TidemarkError } from '../errors.ts';
import { log } from '../log.ts';
import { copySnapshots } from '../repository/copy.ts';
import type { SnapshotId } from '../repository/format.ts';
import { immutableError, immutableUntil } from '../repository/immutability.ts';
import type { Progress } from '../repository/progress.ts';
import { forget, prune } from '../repository/prune.ts';
import { Repository } from '../repository/repository.ts';
import type { Snapshot } from '../repository/snapshot.ts';
import { openStorage, redactUrl } from '../repository/storage/url.ts';
import { writeCatalog } from './catalog.ts';
import { interruptible } from './interrupt.ts';
import { type AgentResult, backupResult, writeResult } from './result.ts';
import { runBackup } from './run-backup.ts';
import { runRestore } from './run-restore.ts';
import { drillInput, runDrillTask } from './tasks/drill.ts';
import type { AgentTask } from './tasks.ts';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new TidemarkError('InvalidArgument', `${name} is not set`);
  return value;
}

/** The replica's view of the environment: REPLICA_-prefixed variables override the unprefixed ones. */
export function replicaEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const prefixed = Object.entries(env).filter(([name]) => name.startsWith('REPLICA_'));
  return { ...env, ...Object.fromEntries(prefixed.map(([name, value]) => [name.slice('REPLICA_'.length), value])) };
}

async function openRepo(env: NodeJS.ProcessEnv, urlVariable: string, keyVariable: string): Promise<Repository> {
  return Repository.open(openStorage(required(env, urlVariable), env), Buffer.from(required(env, keyVariable)));
}

const onProgress = (progress: Progress) =>
  log.info({ event: 'progress', ...progress }, `${progress.operation} progress`);

export async function runAgent(task: AgentTask, env: NodeJS.ProcessEnv = process.env): Promise<AgentResult> {
  const resultFile = env.TIDEMARK_RESULT_FILE;
  let result: AgentResult;
  try {
    result = await perform(task, env);
    if (result.ok) log.info({ event: `${task}-succeeded`, ...result, objects: undefined }, `${task} succeeded`);
    else log.error({ event: `${task}-failed`, ...result }, `${task} failed`);
  } catch (error) {
    const code = error instanceof TidemarkError ? error.code : 'Internal';
    result = { ok: false, error: { code, message: (error as Error).message } };
    log.error({ event: `${task}-failed`, code, err: (error as Error).message }, `${task} failed`);
  }
  if (resultFile) writeResult(resultFile, result);
  else process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

async function perform(task: AgentTask, env: NodeJS.ProcessEnv): Promise<AgentResult> {
  if (task === 'probe') return probe(env);
  if (task === 'drill')
    return runDrillTask(() => drillInput(env, () => openRepo(env, 'TIDEMARK_REPO', 'TIDEMARK_REPO_KEY'), onProgress));
  const repository = await openRepo(env, 'TIDEMARK_REPO', 'TIDEMARK_REPO_KEY');
  log.info({ event: `${task}-started`, repository: redactUrl(required(env, 'TIDEMARK_REPO')) }, `${task} started`);
  if (task === 'backup') {
    const type = env.TIDEMARK_BACKUP_TYPE ?? 'full';
    if (type !== 'full' && type !== 'incremental')
      throw new TidemarkError('InvalidArgument', `TIDEMARK_BACKUP_TYPE ${type}`);
    const snapshot = await runBackup({
      sourceUrl: required(env, 'TIDEMARK_SOURCE'),
      ...(env.TIDEMARK_SOURCE_NAME ? { sourceName: env.TIDEMARK_SOURCE_NAME } : {}),
      allDatabases: env.TIDEMARK_ALL_DATABASES === 'true',
      repository,
      type,
      excludes: env.TIDEMARK_EXCLUDES ? (JSON.parse(env.TIDEMARK_EXCLUDES) as string[]) : [],
      env,
      onProgress,
    });
    return backupResult(snapshot);
  }
  if (task === 'forget')
    return forgetSnapshot(repository, required(env, 'TIDEMARK_SNAPSHOT'), env.TIDEMARK_REPO_IMMUTABILITY);
  if (task === 'catalog') return writeCatalog(repository, env);
  const snapshot = await chosenSnapshot(repository, env);
  if (task === 'replicate') {
    const replica = await openRepo(replicaEnvironment(env), 'TIDEMARK_REPLICA_REPO', 'TIDEMARK_REPLICA_KEY');
    const report = await copySnapshots(repository, replica, [snapshot], { onProgress });
    return { ok: true, snapshotId: snapshot.id, uploadedBytes: report.uploadedBytes };
  }
  const mode = env.TIDEMARK_RESTORE_MODE ?? 'new';
  if (mode !== 'new' && mode !== 'replace') throw new TidemarkError('InvalidArgument', `TIDEMARK_RESTORE_MODE ${mode}`);
  const targetUrl = required(env, 'TIDEMARK_TARGET');
  const outcome = await interruptible(targetUrl, (signal) =>
    runRestore({
      repository,
      snapshot,
      targetUrl,
      mode,
      ...(env.TIDEMARK_DATABASE ? { database: env.TIDEMARK_DATABASE } : {}),
      ...(env.TIDEMARK_POST_RESTORE_SQL
        ? { postRestoreSQL: env.TIDEMARK_POST_RESTORE_SQL }
        : env.TIDEMARK_POST_RESTORE_SQL_FILE
          ? { postRestoreSQL: readFileSync(env.TIDEMARK_POST_RESTORE_SQL_FILE, 'utf8') }
          : {}),
      ...(env.TIDEMARK_SCRIPT_USER
        ? { scriptRole: { user: env.TIDEMARK_SCRIPT_USER, password: env.TIDEMARK_SCRIPT_PASSWORD ?? '' } }
        : {}),
      createMissingRoles: env.TIDEMARK_CREATE_MISSING_ROLES === 'true',
      env,
      onProgress,
      ...(signal ? { signal } : {}),
    }),
  );
  return {
    ok: true,
    snapshotId: snapshot.id,
    snapshotSource: snapshot.source,
    snapshotTime: snapshot.time,
    durationMs: outcome.durationMs,
    objects: outcome.restored,
    skipped: outcome.skipped,
    ...(outcome.warnings.length ? { warnings: outcome.warnings } : {}),
  };
}

/**
 * The snapshot a task works on: TIDEMARK_SNAPSHOT (an id or unique prefix), or, for a restore named
 * by source identity, the newest snapshot of TIDEMARK_SNAPSHOT_SOURCE taken before
 * TIDEMARK_SNAPSHOT_BEFORE (resolved here, from the repository's own catalog).
 */
async function chosenSnapshot(repository: Repository, env: NodeJS.ProcessEnv): Promise<Snapshot> {
  const source = env.TIDEMARK_SNAPSHOT_SOURCE;
  const before = env.TIDEMARK_SNAPSHOT_BEFORE ? new Date(env.TIDEMARK_SNAPSHOT_BEFORE) : undefined;
  if (before && Number.isNaN(before.getTime()))
    throw new TidemarkError(
      'InvalidArgument',
      `TIDEMARK_SNAPSHOT_BEFORE ${env.TIDEMARK_SNAPSHOT_BEFORE} is not a time`,
    );
  const snapshot = source
    ? await repository.latestSnapshotOf(source, before)
    : await repository.findSnapshot(required(env, 'TIDEMARK_SNAPSHOT'));
  // A request straight from a repository restores only its own namespace's snapshots.
  const scope = env.TIDEMARK_SNAPSHOT_SCOPE;
  if (scope && !snapshot.source.startsWith(scope))
    throw new TidemarkError(
      'InvalidArgument',
      `snapshot ${snapshot.id.slice(0, 12)} is of ${snapshot.source}, not of namespace ${scope.replace(/\/$/, '')}: a namespace restores only its own snapshots`,
    );
  return snapshot;
}

/**
 * Forgets a snapshot by its full id (already gone is fine) and prunes; a prune blocked by a running
 * backup waits for the next one. Several of these run at once when retention removes a chain. A
 * snapshot inside the repository's immutability period (TIDEMARK_REPO_IMMUTABILITY, from the
 * BackupRepository spec) is refused, whoever asked.
 */
export async function forgetSnapshot(
  repository: Repository,
  id: string,
  immutability: string | undefined,
  now = new Date(),
): Promise<AgentResult> {
  if (!/^[0-9a-f]{64}$/.test(id))
    throw new TidemarkError('InvalidArgument', `TIDEMARK_SNAPSHOT must be a full snapshot id, not ${id}`);
  if (immutability) {
    const snapshot = (await repository.snapshots()).find((s) => s.id === id);
    const until = snapshot && immutableUntil(snapshot.time, immutability, now);
    if (until) throw immutableError(id, repository.storage.description, immutability, until);
  }
  await forget(repository, [id as SnapshotId]);
  try {
    const report = await prune(repository);
    log.info({ event: 'pruned', ...report }, 'pruned');
  } catch (error) {
    if (!isCode(error, 'Locked')) throw error;
    log.info({ event: 'prune-deferred', err: (error as Error).message }, 'prune deferred: the repository is in use');
  }
  return { ok: true, snapshotId: id };
}

/** Checks reachability and the key; an empty location is initialised (BackupRepository controller). */
async function probe(env: NodeJS.ProcessEnv): Promise<AgentResult> {
  const storage = openStorage(required(env, 'TIDEMARK_REPO'), env);
  const key = Buffer.from(required(env, 'TIDEMARK_REPO_KEY'));
  const empty = !(await storage.stat('config').catch((error: unknown) => {
    if (isCode(error, 'ContainerMissing')) return undefined; // init creates the bucket or container
    throw error;
  }));
  const repository = empty ? await Repository.init(storage, key) : await Repository.open(storage, key);
  let storedBytes = 0;
  for await (const blob of storage.list('')) storedBytes += blob.size;
  return { ok: true, repositoryId: repository.config.id, initialized: empty, storedBytes };
}
