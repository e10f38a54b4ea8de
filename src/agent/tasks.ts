/**
 * What a Job runs. Everything comes from the environment the operator put in the pod spec (secrets
 * through secretKeyRef only); the result goes to the termination message as JSON (result.ts), and
 * progress to the JSON log.
 *
 *   TIDEMARK_REPO, TIDEMARK_REPO_KEY        repository URL and passphrase (+ provider credentials)
 *   TIDEMARK_SOURCE, TIDEMARK_ALL_DATABASES what to back up; PGPASSWORD / MYSQL_PWD (unset: no password)
 *   TIDEMARK_DB_TLS_MODE, _CA, _CERT, _KEY  database TLS: sslmode and PEM files (sources/connection.ts)
 *   TIDEMARK_LOCK_WAIT_TIMEOUT              backup: how long a dump waits for a table lock (default 300 s)
 *   TIDEMARK_LIVE_SOURCE_<i>_NAME, _HOST, _PORT   restore: sources the target must not be (sources/live-source.ts)
 *   TIDEMARK_SOURCE_NAME                    the source's identity in the repository (namespace/policy/source)
 *   TIDEMARK_BACKUP_TYPE                    full | incremental
 *   TIDEMARK_EXCLUDES                       JSON array of globs (volumes)
 *   TIDEMARK_SNAPSHOT, TIDEMARK_TARGET, TIDEMARK_RESTORE_MODE, TIDEMARK_DATABASE,
 *   TIDEMARK_POST_RESTORE_SQL (the SQL itself; not secret, kept out of argv),
 *   TIDEMARK_POST_RESTORE_SQL_FILE          restore
 *   TIDEMARK_SCRIPT_USER, TIDEMARK_SCRIPT_PASSWORD   restore: the role the post-restore SQL runs as
 *                                           (same server as the target); absent: the restoring user
 *   TIDEMARK_REPLICA_REPO, TIDEMARK_REPLICA_KEY   replicate; the replica's provider credentials
 *                                           come prefixed REPLICA_ (two S3 repositories need two key pairs)
 *   TIDEMARK_SNAPSHOT                       forget: remove it, then prune what it freed
 *   TIDEMARK_SNAPSHOT_SOURCE, TIDEMARK_SNAPSHOT_BEFORE   restore by source identity: its newest snapshot
 *                                           (taken before the time), instead of TIDEMARK_SNAPSHOT
 *   TIDEMARK_SNAPSHOT_SCOPE                 restore: refuse a snapshot whose source identity lacks this prefix
 *   TIDEMARK_CATALOG_PREFIX, TIDEMARK_CATALOG_CONFIGMAP, TIDEMARK_CATALOG_OWNER, TIDEMARK_NAMESPACE
 *                                           catalog: list the snapshots under the prefix into that ConfigMap
 *   (probe)                                 reach the repository, initialise it when empty, report its size
 *   TIDEMARK_DRILL_SERVER, TIDEMARK_DRILL_CLEANUP   drill (tasks/drill.ts)
 *   TIDEMARK_RESULT_FILE                    where the result goes (the Job sets /dev/termination-log); else stdout
 *
 * The tasks live apart from agent.ts so the CLI can list them without loading the agent.
 */
export const AGENT_TASKS = ['backup', 'restore', 'replicate', 'forget', 'probe', 'catalog', 'drill'] as const;
export type AgentTask = (typeof AGENT_TASKS)[number];
