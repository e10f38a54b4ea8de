import { Worker } from 'node:worker_threads';
import { TidemarkError } from '../../errors.ts';
import type { ChunkId } from '../format.ts';
import { sealedBound } from './chunk-work.ts';
import { cpuQuota } from './cpu-quota.ts';
import { VERDICT_SEAL, VERDICT_SKIP, VERDICT_STEP, type WorkerJob, type WorkerReply } from './protocol.ts';
import type { SmallChunkBatch } from './small-chunk-batch.ts';

/** Shared memory a chunk is copied into once, read by whichever worker runs its jobs; reused chunk after chunk. */
export class Slot {
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
  /** What the pool tells the worker holding this slot's chunk after `identify` (protocol.ts). */
  readonly verdict = new Int32Array(new SharedArrayBuffer(4));
  /** The verdict word's value while the current `identify` job waits (protocol.ts). */
  pending = 0;

  constructor(length: number) {
    this.input = new SharedArrayBuffer(length);
    this.output = new SharedArrayBuffer(sealedBound(length));
  }

  /** Grows to hold a chunk of `length` bytes (a repository with larger chunks, a large tree). */
  fit(length: number): void {
    if (this.input.byteLength >= length) return;
    this.input = new SharedArrayBuffer(length);
    this.output = new SharedArrayBuffer(sealedBound(length));
  }
}

export interface ChunkPipelineOptions {
  /** Worker threads; default: the container's CPU quota (cpu-quota.ts). */
  workers?: number;
  /** Chunks held in shared memory at once (bounds memory: slots × chunk size × 2); default 2 per worker + 2. */
  slots?: number;
  /** The worker module; default chunk-worker.ts (.js once compiled). */
  workerUrl?: URL;
}

interface Running {
  resolve: (reply: WorkerReply) => void;
  reject: (error: unknown) => void;
  /** For an `identify` job: its worker holds the chunk once the id is in. */
  onId?: (worker: PipelineWorker) => void;
}

interface Queued extends Running {
  job: WorkerJob;
}

interface PipelineWorker {
  worker: Worker;
  running?: Running;
  /** Why it stopped, once it has. */
  lost?: string;
}

type Sealed = { codec: number; length: number };

const SLOT_LENGTH = 4 * 1024 * 1024; // the chunker's default max
/**
 * A worker's heap holds a job's message and little else (chunks are in shared memory), but each sealed chunk leaves
 * a buffer of garbage outside it (AES-GCM's output, which node:crypto always allocates). V8 collects those when the
 * memory outside the heap has grown ~64 MiB, so each worker held up to that much; a small heap limit makes it
 * collect them sooner: the 2 GiB benchmark set's first backup peaked at ~340 MiB instead of ~430, for ~4% more CPU
 * (docs/decisions.md). Ten times what a worker's heap holds.
 */
const WORKER_HEAP_MIB = 48;
const workerModule = new URL(`./chunk-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * Worker threads that hash, compress and seal chunks while the main thread reads, chunks and writes
 * packs. Jobs queue until a worker is free; slots (shared memory) bound what is in flight, so
 * `acquire` waits when they are all taken (back-pressure). Workers are started on first use and do
 * not keep the process alive while idle. A worker that dies fails its job (never a hang); the next
 * job starts a new one.
 */
export class ChunkPipeline {
  readonly workerCount: number;
  private readonly slotCount: number;
  private readonly workerUrl: URL;
  private readonly workers = new Set<PipelineWorker>();
  private readonly idle: PipelineWorker[] = [];
  private readonly queue: Queued[] = [];
  private readonly freeSlots: Slot[] = [];
  private slotsMade = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Workers waiting for the verdict on the chunk they identified, by its slot. */
  private readonly holding = new Map<Slot, PipelineWorker>();

  constructor(options: ChunkPipelineOptions = {}) {
    this.workerCount = Math.max(1, options.workers ?? cpuQuota());
    this.slotCount = Math.max(1, options.slots ?? 2 * this.workerCount + 2);
    this.workerUrl = options.workerUrl ?? workerModule;
  }

  /** A slot able to hold `length` bytes; waits while all are in use. Give it back with `release`. */
  async acquire(length: number): Promise<Slot> {
    for (;;) {
      let slot = this.freeSlots.pop();
      if (!slot && this.slotsMade < this.slotCount) {
        this.slotsMade++;
        slot = new Slot(Math.max(SLOT_LENGTH, length));
      }
      if (slot) {
        slot.fit(length);
        return slot;
      }
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  release(slot: Slot): void {
    this.freeSlots.push(slot);
    this.slotWaiters.shift()?.();
  }

  /**
   * The id of the chunk in slot.input[0, length) (see chunk-work.ts). The worker then holds the chunk
   * until told what to do with it: the caller must call `sealIdentified` or `skip` next, without
   * awaiting anything else (the worker waits meanwhile). One message to a worker per chunk, new or not.
   */
  async identify(
    slot: Slot,
    length: number,
    key: Uint8Array,
    chain: Uint8Array,
    sealKey: Uint8Array,
  ): Promise<ChunkId> {
    slot.pending = (slot.pending + VERDICT_STEP) | 0;
    Atomics.store(slot.verdict, 0, slot.pending);
    const { input, output, verdict, pending } = slot;
    const job: WorkerJob = { kind: 'identify', input, length, key, chain, sealKey, output, verdict, pending };
    const reply = await this.run(job, (worker) => this.holding.set(slot, worker));
    return (reply as Extract<WorkerReply, { kind: 'id' }>).id as ChunkId;
  }

  /** Seals the chunk `identify` left in the slot (into slot.output) with the key given there. */
  async sealIdentified(slot: Slot): Promise<Sealed> {
    const handle = this.takeHolder(slot);
    if (!handle || handle.lost) throw stopped(handle?.lost ?? 'it held no chunk of this slot');
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      handle.running = { resolve, reject };
      this.tell(slot, VERDICT_SEAL);
    });
    return checked(reply) as Sealed;
  }

  /** Drops the chunk `identify` left in the slot (it is stored already); its worker takes the next job. */
  skip(slot: Slot): void {
    const handle = this.takeHolder(slot);
    this.tell(slot, VERDICT_SKIP);
    if (handle && !handle.lost) this.idleAgain(handle);
  }

  /** Seals the chunk in slot.input[0, length) into slot.output; returns codec and record length. */
  async seal(slot: Slot, length: number, key: Uint8Array, id: ChunkId): Promise<Sealed> {
    const reply = await this.run({ kind: 'seal', input: slot.input, length, key, id, output: slot.output });
    return reply as Sealed;
  }

  /** Seals the small chunks of `batch` into its output back to back; returns codec and record length of each, in turn. */
  async sealBatch(batch: SmallChunkBatch, key: Uint8Array): Promise<number[]> {
    const { input, output, ids, ends, length } = batch;
    const reply = await this.run({ kind: 'seal-batch', input, length, key, ids, ends, output });
    return (reply as Extract<WorkerReply, { kind: 'sealed-batch' }>).records;
  }

  /** Stops the workers (tests; the shared pipeline's idle workers do not keep a process alive). */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.worker.terminate()));
  }

  /** Runs a job on a free worker; `onId`: an `identify` job's worker now holds the chunk. */
  private run(job: WorkerJob, onId?: (worker: PipelineWorker) => void): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve, reject) => {
      this.queue.push({ job, resolve, reject, ...(onId ? { onId } : {}) });
      this.dispatch();
    }).then(checked);
  }

  private dispatch(): void {
    while (this.queue.length > 0 && (this.idle.length > 0 || this.workers.size < this.workerCount)) {
      const worker = this.idle.pop() ?? this.start();
      const { job, ...running } = this.queue.shift() as Queued;
      worker.running = running;
      worker.worker.ref();
      worker.worker.postMessage(job);
    }
  }

  private takeHolder(slot: Slot): PipelineWorker | undefined {
    const handle = this.holding.get(slot);
    this.holding.delete(slot);
    return handle;
  }

  private tell(slot: Slot, verdict: number): void {
    Atomics.store(slot.verdict, 0, slot.pending + verdict);
    Atomics.notify(slot.verdict, 0);
  }

  private idleAgain(handle: PipelineWorker): void {
    handle.worker.unref();
    this.idle.push(handle);
    this.dispatch();
  }

  private start(): PipelineWorker {
    const handle: PipelineWorker = {
      worker: new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MIB } }),
    };
    handle.worker.on('message', (reply: WorkerReply) => {
      const running = handle.running;
      handle.running = undefined;
      if (reply.kind === 'id' && running?.onId)
        running.onId(handle); // it waits for the verdict: still busy
      else this.idleAgain(handle);
      running?.resolve(reply);
    });
    handle.worker.on('error', (error: unknown) =>
      this.lost(handle, error instanceof Error ? error.message : String(error)),
    );
    handle.worker.on('exit', (code) => this.lost(handle, `exited with code ${code}`));
    this.workers.add(handle);
    return handle;
  }

  /** A worker died: its job fails with why, and a later job starts a new worker. */
  private lost(handle: PipelineWorker, reason: string): void {
    if (!this.workers.delete(handle)) return;
    handle.lost = reason;
    const at = this.idle.indexOf(handle);
    if (at >= 0) this.idle.splice(at, 1);
    handle.running?.reject(stopped(reason));
    handle.running = undefined;
    this.dispatch();
  }
}

function checked(reply: WorkerReply): WorkerReply {
  if (reply.kind === 'failed')
    throw new TidemarkError(reply.code === 'Unsupported' ? 'Unsupported' : 'Internal', reply.message);
  return reply;
}

function stopped(reason: string): TidemarkError {
  return new TidemarkError('Internal', `chunk pipeline worker stopped: ${reason}`);
}

let shared: ChunkPipeline | undefined;
/** The process's pipeline, sized from the CPU quota, started on first use. */
export function sharedPipeline(): ChunkPipeline {
  shared ??= new ChunkPipeline();
  return shared;
}
