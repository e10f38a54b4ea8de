import { Worker } from 'node:worker_threads';
import type { ScanJob, ScanResult } from './unchanged.ts';

const workerModule = new URL(
  `./unchanged-scan-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

interface ScanWorker {
  worker: Worker;
  /** Scans asked of it, answered in order. */
  waiting: { resolve: (result: ScanResult) => void; reject: (error: unknown) => void }[];
}

/**
 * Worker threads that check directories of an incremental backup against their trees in the parent snapshot
 * (unchanged.ts), ahead of the walk: a directory found unchanged costs the walk no listing and no lstat per name,
 * which are most of a nothing-changed backup of many small files, and they run on the other cores. Started on the
 * first scan; a worker that fails fails its scans (the walk then looks at those directories itself).
 */
export class UnchangedScanner {
  private readonly workers: ScanWorker[] = [];

  constructor(
    private readonly workerCount: number,
    private readonly excludes: string[],
  ) {}

  scan(job: ScanJob): Promise<ScanResult> {
    const target = this.leastBusy();
    return new Promise((resolve, reject) => {
      target.waiting.push({ resolve, reject });
      // Copies of their own (transferred): a Buffer viewing a larger ArrayBuffer would be posted whole.
      const copy = { ...job, base: new Uint8Array(job.base), realPath: new Uint8Array(job.realPath) };
      const parentTree = new Uint8Array(job.parentTree);
      target.worker.postMessage({ ...copy, parentTree }, [parentTree.buffer]);
    });
  }

  /** Stops the workers (a scan still waiting fails). */
  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map(({ worker }) => worker.terminate()));
  }

  private leastBusy(): ScanWorker {
    if (this.workers.length < this.workerCount) return this.start();
    return this.workers.reduce((a, b) => (b.waiting.length < a.waiting.length ? b : a));
  }

  private start(): ScanWorker {
    const handle: ScanWorker = {
      worker: new Worker(workerModule, { workerData: { excludes: this.excludes } }),
      waiting: [],
    };
    handle.worker.on('message', (result: ScanResult) => handle.waiting.shift()?.resolve(result));
    const fail = (error: unknown) => {
      const at = this.workers.indexOf(handle);
      if (at >= 0) this.workers.splice(at, 1); // the next scan starts another
      for (const { reject } of handle.waiting.splice(0)) reject(error);
    };
    handle.worker.on('error', fail);
    handle.worker.on('exit', (code) => fail(new Error(`directory scan worker exited (code ${code})`)));
    handle.worker.unref();
    this.workers.push(handle);
    return handle;
  }
}
