import { Writable } from 'node:stream';
import { TidemarkError } from '../../errors.ts';
import { DumpToCsv } from '../../export/database-csv.ts';
import type { ExportStore } from '../../export/export-store.ts';
import { ZipStream } from '../../export/zip-stream.ts';
import type { ProgressListener } from '../../repository/progress.ts';
import type { Repository } from '../../repository/repository.ts';
import { readTreeFiles, restoreStream } from '../../repository/restore.ts';
import type { Snapshot } from '../../repository/snapshot.ts';
import { decodeName, decodeTree } from '../../repository/tree.ts';
import type { ObjectCount } from '../../sources/source.ts';

/** Streams of a database snapshot that hold no tables (roles and grants). */
const GLOBALS_STREAM = 'globals.sql';

export interface ExportRequest {
  repository: Repository;
  /** The repository's object store, where the ZIP goes (export-store.ts). */
  store: ExportStore;
  snapshot: Snapshot;
  /** What the snapshot holds: database dumps (a CSV per table) or a volume's files. */
  kind: 'database' | 'volume';
  /** The object's key, relative to the repository: `exports/<namespace>/<export>-<uid>.zip`. */
  key: string;
  /** When the link stops working. */
  expires: Date;
  onProgress?: ProgressListener;
}

export interface ExportOutcome {
  key: string;
  /** Where the object is, for someone with access to the storage (a path for filesystem repositories). */
  location: string;
  size: number;
  /** The download link: a bearer credential until `expires`; absent for filesystem repositories. */
  link?: string;
  /** Rows per table (`database/table`), or the number of files (`files`) for a volume. */
  objects: ObjectCount[];
}

/** Writes the snapshot as a ZIP into the repository's object store, streamed, and makes its link. */
export async function runExport(request: ExportRequest): Promise<ExportOutcome> {
  const { store, key } = request;
  const zip = new ZipStream();
  const uploaded = store.upload(key, zip.output);
  let objects: ObjectCount[];
  try {
    objects = request.kind === 'database' ? await writeTables(request, zip) : await writeFiles(request, zip);
    zip.finish();
  } catch (error) {
    zip.abort(error as Error);
    await uploaded.catch(() => {}); // the archive's error is the one to report
    await store.delete(key).catch(() => {});
    throw error;
  }
  const size = await uploaded;
  const fileName = key.slice(key.lastIndexOf('/') + 1);
  const link = await store.link(key, request.expires, fileName);
  return { key, location: store.location(key), size, ...(link ? { link } : {}), objects };
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
