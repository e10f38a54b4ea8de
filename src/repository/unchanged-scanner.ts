import { Worker } from 'node:worker_threads';
import { cpuQuota } from './pipeline/cpu-quota.ts';
import type { ScanJob, ScanResult } from './unchanged.ts';

const workerModule = new URL(
  `./unchanged-scan-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

/** Names a prescan holds listed ahead of the scans, at most (a listing is about 100 bytes a name). */
const PRESCAN_BUDGET = 100_000;

interface ScanWorker {
  worker: Worker;
  /** Scans asked of it, answered in order. */
  waiting: { resolve: (result: ScanResult) => void; reject: (error: unknown) => void }[];
}

interface Reply {
  result: ScanResult;
  /** Whether the worker's prescan is still ahead of the scans (see unchanged-scan-worker.ts). */
  ahead: boolean;
}

/**
 * Worker threads that check directories of an incremental backup against their trees in the parent snapshot
 * (unchanged.ts), ahead of the walk: a directory found unchanged costs the walk no listing and no lstat per name,
 * which are most of a nothing-changed backup of many small files, and they run on the other cores. Made with a
 * root (`prescanning`) before the repository is opened, the first worker lists the tree meanwhile (deriving the
 * keys and reading the index of a large repository takes the main thread a while), and every scan goes to it
 * until the walk has caught up with it. A worker that fails fails its scans (the walk then looks at those
 * directories itself); the next scan starts another.
 */
export class UnchangedScanner {
  private readonly workers: ScanWorker[] = [];
  private prescanner: ScanWorker | undefined;
  private listedAll: () => void = () => {};
  /** Resolves once the prescan has listed the whole tree (never when the walk caught up with it first). */
  readonly prescanned = new Promise<void>((resolve) => (this.listedAll = resolve));

  constructor(
    private readonly workerCount: number,
    private readonly excludes: string[],
    /** When a prescan started listing (ms since the epoch). */
    readonly since?: number,
  ) {}

  /** A scanner whose first worker starts listing the tree at `root` at once (see the class). */
  static prescanning(root: string, excludes: string[], workerCount = cpuQuota()): UnchangedScanner {
    const scanner = new UnchangedScanner(workerCount, excludes, Date.now());
    scanner.prescanner = scanner.start(Buffer.from(root));
    while (scanner.workers.length < workerCount) scanner.start(); // ready once the walk catches up
    return scanner;
  }

  scan(job: ScanJob): Promise<ScanResult> {
    const target = this.prescanner ?? this.leastBusy();
    return new Promise((resolve, reject) => {
      target.waiting.push({ resolve, reject });
      // Copies of their own (the tree's transferred): a Buffer viewing a larger ArrayBuffer is posted whole.
      const parentTree = new Uint8Array(job.parentTree);
      const copy = { ...job, base: new Uint8Array(job.base), realPath: new Uint8Array(job.realPath), parentTree };
      target.worker.postMessage(copy, [parentTree.buffer]);
    });
  }

  /** Stops the workers (a scan still waiting fails). */
  async close(): Promise<void> {
    this.prescanner = undefined;
    await Promise.all(this.workers.splice(0).map(({ worker }) => worker.terminate()));
  }

  private leastBusy(): ScanWorker {
    if (this.workers.length < this.workerCount) return this.start();
    return this.workers.reduce((a, b) => (b.waiting.length < a.waiting.length ? b : a));
  }

  private start(prescanRoot?: Buffer): ScanWorker {
    const workerData = { excludes: this.excludes, budget: PRESCAN_BUDGET, ...(prescanRoot ? { prescanRoot } : {}) };
    const handle: ScanWorker = { worker: new Worker(workerModule, { workerData }), waiting: [] };
    handle.worker.on('message', (reply: Reply | 'listed') => {
      if (reply === 'listed') return this.listedAll();
      if (!reply.ahead && this.prescanner === handle) this.prescanner = undefined;
      handle.waiting.shift()?.resolve(reply.result);
    });
    const fail = (error: unknown) => {
      const at = this.workers.indexOf(handle);
      if (at >= 0) this.workers.splice(at, 1);
      if (this.prescanner === handle) this.prescanner = undefined;
      for (const { reject } of handle.waiting.splice(0)) reject(error);
    };
    handle.worker.on('error', fail);
    handle.worker.on('exit', (code) => fail(new Error(`directory scan worker exited (code ${code})`)));
    handle.worker.unref();
    this.workers.push(handle);
    return handle;
  }
}
