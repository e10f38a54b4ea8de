/** Messages between the pool (pool.ts) and its workers (chunk-worker.ts); chunk bytes stay in shared memory. */
interface SharedChunk {
  /** The chunk is input[0, length). */
  input: SharedArrayBuffer;
  length: number;
}

/**
 * Verdict[0] of an `identify` job: the worker waits while it holds the job's `pending` value, then seals the
 * chunk if it holds `pending + VERDICT_SEAL`. Each job on a slot has its own `pending`: a worker that reaches
 * its wait late, after its verdict and after the slot went to the next chunk, must see that the word moved on
 * (not wait on the next job's value, nor take the next job's SEAL for its own).
 */
export const VERDICT_SEAL = 1;
export const VERDICT_SKIP = 2;
/** Distance between the `pending` values of successive jobs on a slot. */
export const VERDICT_STEP = 4;

export type WorkerJob =
  /**
   * The chunk id (reply `id`), then, on the same worker without another job, the sealed record
   * (reply `sealed`) when the pool's verdict is VERDICT_SEAL: one message to a worker per new chunk.
   */
  | (SharedChunk & {
      kind: 'identify';
      key: Uint8Array;
      chain: Uint8Array;
      sealKey: Uint8Array;
      output: SharedArrayBuffer;
      verdict: Int32Array;
      pending: number;
    })
  | (SharedChunk & { kind: 'seal'; key: Uint8Array; id: string; output: SharedArrayBuffer })
  /** Small chunks back to back (chunk i ends at ends[i]), sealed into `output` back to back (small-chunk-batch.ts). */
  | (SharedChunk & { kind: 'seal-batch'; key: Uint8Array; ids: string[]; ends: number[]; output: SharedArrayBuffer });

export type WorkerReply =
  | { kind: 'id'; id: string }
  | { kind: 'sealed'; codec: number; length: number }
  /** Codec and record length of each chunk of a `seal-batch` job, in turn. */
  | { kind: 'sealed-batch'; records: number[] }
  | { kind: 'failed'; message: string; code?: string };
