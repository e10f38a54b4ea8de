import { parentPort, workerData } from 'node:worker_threads';
import { globMatcher } from './glob.ts';
import { type ScanJob, scanUnchanged } from './unchanged.ts';

/** A worker thread of unchanged-scanner.ts: scans one directory per message, in the order asked. */
const port = parentPort;
if (!port) throw new Error('unchanged-scan-worker.ts runs as a worker thread of a backup');
const excluded = globMatcher((workerData as { excludes: string[] }).excludes);
port.on('message', (job: ScanJob) => port.postMessage(scanUnchanged(job, excluded)));
