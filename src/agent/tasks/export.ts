import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { parseDuration } from '../../api/duration.ts';
import { TidemarkError } from '../../errors.ts';
import { DumpToCsv } from '../../export/database-csv.ts';
import { ZipStream } from '../../export/zip-stream.ts';
import { log } from '../../log.ts';
import type { ProgressListener } from '../../repository/progress.ts';
import type { Repository } from '../../repository/repository.ts';
import { readTreeFiles, restoreStream } from '../../repository/restore.ts';
import type { Snapshot } from '../../repository/snapshot.ts';
import type { Storage } from '../../repository/storage/storage.ts';
import { openStorage } from '../../repository/storage/url.ts';
import { decodeName, decodeTree } from '../../repository/tree.ts';
import type { ObjectCount } from '../../sources/source.ts';
import { required } from './env.ts';
import { inClusterConfig, SERVICE_ACCOUNT_DIR, SERVICE_ACCOUNT_DIR_ENV } from './kubernetes-api.ts';
import type { AgentTask } from './task.ts';

/** Streams of a database snapshot that hold no tables (roles and grants). */
const GLOBALS_STREAM = 'globals.sql';

/**
 * An export is written into the repository's own storage, under `exports/`, which is no part of the repository
 * format (docs/repository-format.md), so check, prune and repair never look at it. It is streamed (S3 multipart,
 * Azure staged blocks, a temporary file renamed), never held whole in memory.
 */
export interface ExportRequest {
  /** The repository read, whose storage the ZIP is written into. */
  repository: Repository;
  snapshot: Snapshot;
  /** What the snapshot holds: database dumps (a CSV per table) or a volume's files. */
  kind: 'database' | 'volume';
  /** The object's key, relative to the repository: `exports/<namespace>/<export>-<uid>.zip`. */
  key: string;
  /** How long the link works, counted from when the ZIP is complete. */
  expiresAfterMs: number;
  onProgress?: ProgressListener;
}

export interface ExportOutcome {
  key: string;
  /** Where the object is, for someone with access to the storage (a path for filesystem repositories). */
  location: string;
  size: number;
  /** The download link: a bearer credential until `expiryTime`; absent for filesystem repositories. */
  link?: string;
  expiryTime: Date;
  /** Rows per table (`database/table`), or the number of files (`files`) for a volume. */
  objects: ObjectCount[];
}

/** Writes the snapshot as a ZIP into the repository's object store, streamed, and makes its link. */
export async function runExport(request: ExportRequest): Promise<ExportOutcome> {
  const { key } = request;
  const storage = exportStorage(request.repository.storage);
  const zip = new ZipStream();
  const uploaded = storage.putStream(key, zip.output, { contentType: 'application/zip' });
  // An upload that gives up stops the archive, or its writer would wait for ever for room in the stream.
  uploaded.catch((error: Error) => zip.abort(error));
  let objects: ObjectCount[];
  try {
    objects = request.kind === 'database' ? await writeTables(request, zip) : await writeFiles(request, zip);
    zip.finish();
  } catch (error) {
    zip.abort(error as Error);
    await uploaded.catch(() => {}); // the archive's error is the one to report
    await storage.delete(key).catch(() => {});
    throw error;
  }
  const size = await uploaded;
  const expiryTime = new Date(Date.now() + request.expiresAfterMs);
  const seconds = Math.max(1, Math.ceil((expiryTime.getTime() - Date.now()) / 1000));
  const link = await storage.presign?.(key, seconds);
  return { key, location: storage.location(key), size, ...(link ? { link } : {}), expiryTime, objects };
}

/** The storage with what an export needs, which every backend has (storage.ts). */
function exportStorage(storage: Storage): Storage & Required<Pick<Storage, 'putStream' | 'location'>> {
  const { putStream, location } = storage;
  if (!putStream || !location)
    throw new TidemarkError('Unsupported', `${storage.description}: cannot hold exports (no streamed put)`);
  return { ...storage, putStream: putStream.bind(storage), location: location.bind(storage) };
}

async function writeTables(request: ExportRequest, zip: ZipStream): Promise<ObjectCount[]> {
  const { repository, snapshot } = request;
  const root = decodeTree(await repository.chunkStore().get(snapshot.root));
  const streams = root.entries
    .filter((e) => e.type === 'file')
    .map((e) => decodeName(e).toString('utf8'))
    .filter((name) => name !== GLOBALS_STREAM);
  if (streams.length === 0)
    throw new TidemarkError('InvalidArgument', `snapshot ${snapshot.id.slice(0, 12)} holds no database dump`);
  const objects: ObjectCount[] = [];
  const modified = new Date(snapshot.time);
  for (const stream of streams) {
    const database = stream.replace(/\.sql$/, '');
    const csv = new DumpToCsv(zip, database, modified);
    await restoreStream(repository, snapshot, csv, stream, progress(request));
    objects.push(...csv.tables().map((t) => ({ name: `${database}/${t.name}`, records: t.records })));
  }
  return objects;
}

async function writeFiles(request: ExportRequest, zip: ZipStream): Promise<ObjectCount[]> {
  let files = 0;
  await readTreeFiles(
    request.repository,
    request.snapshot,
    (path, entry) => {
      files++;
      zip.open(path, new Date(Number(BigInt(entry.mtimeNs) / 1_000_000n)));
      return new Writable({
        write: (chunk: Buffer, _encoding, callback) => zip.write(chunk).then(() => callback(), callback),
        final: (callback) => {
          zip.close();
          callback();
        },
      });
    },
    progress(request),
  );
  return [{ name: 'files', records: files }];
}

function progress(request: ExportRequest): { onProgress?: ProgressListener } {
  return request.onProgress ? { onProgress: request.onProgress } : {};
}

/** The export task's own environment: written by the operator (jobEnv), read by the agent (input). */
const ENV = {
  snapshot: 'TIDEMARK_SNAPSHOT',
  kind: 'TIDEMARK_EXPORT_KIND',
  key: 'TIDEMARK_EXPORT_KEY',
  action: 'TIDEMARK_EXPORT_ACTION',
  expiresAfter: 'TIDEMARK_EXPORT_EXPIRES_AFTER',
  secret: 'TIDEMARK_EXPORT_SECRET',
  owner: 'TIDEMARK_EXPORT_OWNER',
  namespace: 'TIDEMARK_NAMESPACE',
} as const;

/** The key of the link in the export's Secret. */
export const LINK_KEY = 'url';

/** What the operator asks for: write the ZIP (and its link's Secret), or delete it (expired, or the export deleted). */
export type ExportInput =
  | {
      action: 'write';
      snapshotId: string;
      kind: 'database' | 'volume';
      key: string;
      expiresAfter: string;
      secretName: string;
      namespace: string;
      owner: k8s.V1OwnerReference;
    }
  | { action: 'delete'; key: string };

export interface ExportResult {
  snapshotId?: string;
  /** Rows per table (`database/table`), or `files` for a volume. */
  objects?: ObjectCount[];
  /** Where the ZIP is, its size, when its link expires, whether there is one (the link itself is only in its Secret). */
  export?: { key: string; location: string; sizeBytes: number; expiryTime: string; linked: boolean };
}

/**
 * `export`: writes the ZIP, then puts its link into a new Secret owned by the BackupExport (the link
 * is a bearer credential: never in the result, which the pod's status shows, nor in logs). Filesystem
 * repositories get no link and no Secret: the result names the ZIP's path instead. `delete` removes
 * the ZIP (a missing one is fine). Fails InvalidArgument, NotFound (the snapshot), Corrupt (a dump
 * that cannot be read), Unsupported (no link possible), Transient (the API server), or a storage code.
 */
export const exportTask: AgentTask<'export', ExportInput, ExportResult, ExportInput> = {
  name: 'export',
  deadlineSeconds: 6 * 3600,
  jobEnv: (job) =>
    job.action === 'delete'
      ? [
          { name: ENV.action, value: 'delete' },
          { name: ENV.key, value: job.key },
        ]
      : [
          { name: ENV.action, value: 'write' },
          { name: ENV.snapshot, value: job.snapshotId },
          { name: ENV.kind, value: job.kind },
          { name: ENV.key, value: job.key },
          { name: ENV.expiresAfter, value: job.expiresAfter },
          { name: ENV.secret, value: job.secretName },
          { name: ENV.namespace, value: job.namespace },
          { name: ENV.owner, value: JSON.stringify(job.owner) },
          { name: SERVICE_ACCOUNT_DIR_ENV, value: SERVICE_ACCOUNT_DIR },
        ],
  input: (env) => {
    const key = required(env, ENV.key);
    if (!/^exports\/[a-z0-9.-]+\/[a-z0-9.-]+\.zip$/.test(key))
      throw new TidemarkError('InvalidArgument', `${ENV.key} ${key} is not under exports/`);
    if (env[ENV.action] === 'delete') return { action: 'delete', key };
    const kind = required(env, ENV.kind);
    if (kind !== 'database' && kind !== 'volume')
      throw new TidemarkError('InvalidArgument', `${ENV.kind} must be database or volume, not ${kind}`);
    return {
      action: 'write',
      snapshotId: required(env, ENV.snapshot),
      kind,
      key,
      expiresAfter: required(env, ENV.expiresAfter),
      secretName: required(env, ENV.secret),
      namespace: required(env, ENV.namespace),
      owner: JSON.parse(required(env, ENV.owner)) as k8s.V1OwnerReference,
    };
  },
  run: async (input, { env, repository, onProgress }) => {
    if (input.action === 'delete') {
      const storage = exportStorage(openStorage(required(env, 'TIDEMARK_REPO'), env));
      await storage.delete(input.key);
      log.info({ event: 'export-deleted', object: storage.location(input.key) }, 'export deleted');
      return {};
    }
    const repo = await repository();
    const snapshot = await repo.findSnapshot(input.snapshotId);
    const outcome = await runExport({
      repository: repo,
      snapshot,
      kind: input.kind,
      key: input.key,
      expiresAfterMs: parseDuration(input.expiresAfter),
      onProgress,
    });
    const expiryTime = outcome.expiryTime.toISOString();
    if (outcome.link) await createLinkSecret(input, outcome.link, expiryTime, env);
    log.info({ event: 'export-written', object: outcome.location, bytes: outcome.size, expiryTime }, 'export written');
    return {
      snapshotId: snapshot.id,
      objects: outcome.objects,
      export: {
        key: outcome.key,
        location: outcome.location,
        sizeBytes: outcome.size,
        expiryTime,
        linked: outcome.link !== undefined,
      },
    };
  },
};

async function createLinkSecret(
  input: Extract<ExportInput, { action: 'write' }>,
  link: string,
  expiryTime: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const { namespace, secretName: name } = input;
  const core = inClusterConfig(env).makeApiClient(k8s.CoreV1Api);
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'tidemark' },
          annotations: { 'tidemark.dev/expiry-time': expiryTime },
          ownerReferences: [input.owner],
        },
        type: 'Opaque',
        stringData: { [LINK_KEY]: link },
      },
    });
  } catch (error) {
    throw new TidemarkError(
      'Transient',
      `creating Secret ${namespace}/${name} for the export's link: ${(error as { code?: number }).code ?? ''} ${(error as Error).message.slice(0, 300)}`,
    );
  }
}
