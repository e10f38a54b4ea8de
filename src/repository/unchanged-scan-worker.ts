import { parentPort, workerData } from 'node:worker_threads';
import { globMatcher } from './glob.ts';
import { type Listing, listDirectory, nameAt, type ScanJob, scanUnchanged, statAt } from './unchanged.ts';

/**
 * A worker thread of unchanged-scanner.ts: scans one directory per message, in the order asked. Given a root, it
 * also lists the tree ahead of the scans (a prescan), in the order the walk asks for directories: a directory,
 * each of its subdirectories, then below each in turn. A scan takes its directory's listing when there is one;
 * one asked for before it is listed means the walk has caught up, and the prescan stops.
 */
const port = parentPort;
if (!port) throw new Error('unchanged-scan-worker.ts runs as a worker thread of a backup');
const { excludes, prescanRoot, budget } = workerData as {
  excludes: string[];
  prescanRoot?: Uint8Array;
  budget: number;
};
const excluded = globMatcher(excludes);

const listed = new Map<string, Listing>();
let listedNames = 0;
/** Whether scans are to come here: the prescan lists, or has listed, ahead of them (until the first miss). */
let ahead = prescanRoot !== undefined;
let taken: (() => void) | undefined;

port.on('message', (job: ScanJob) => {
  const key = Buffer.from(job.realPath).toString('latin1');
  const listing = listed.get(key);
  if (listing) {
    listed.delete(key);
    listedNames -= listing.names.length;
    taken?.();
  } else if (ahead) stopPrescan();
  port.postMessage({ result: scanUnchanged(listing ? { ...job, listing } : job, excluded), ahead });
});

function stopPrescan(): void {
  ahead = false;
  listed.clear();
  listedNames = 0;
  taken?.();
}

interface Directory {
  path: Buffer;
  display: string;
}

const SLASH = Buffer.from('/');

/** Lists a directory ahead of its scan; returns its subdirectories (none once the prescan stopped). */
async function prescan({ path, display }: Directory): Promise<Directory[]> {
  // Between directories, scans are answered; a full budget waits for them to take listings.
  await new Promise((resolve) => setImmediate(resolve));
  while (ahead && listedNames >= budget) await new Promise<void>((resolve) => (taken = resolve));
  if (!ahead) return [];
  const listing = listDirectory(path, path, display, excluded);
  listed.set(path.toString('latin1'), listing);
  listedNames += listing.names.length;
  const subdirs: Directory[] = [];
  for (let i = 0; i < listing.names.length; i++) {
    if (!statAt(listing, i).isDirectory()) continue;
    const name = nameAt(listing, i);
    subdirs.push({ path: Buffer.concat([path, SLASH, name]), display: `${display}/${name.toString('utf8')}` });
  }
  return subdirs;
}

async function below(subdirs: Directory[]): Promise<void> {
  const grandchildren: Directory[][] = [];
  for (const subdir of subdirs) grandchildren.push(await prescan(subdir));
  for (const next of grandchildren) await below(next);
}

if (prescanRoot) {
  await below(await prescan({ path: Buffer.from(prescanRoot), display: '' }));
  if (ahead) port.postMessage('listed');
}
