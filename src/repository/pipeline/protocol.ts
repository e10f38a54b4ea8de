/** Messages between the pool (pool.ts) and its workers (chunk-worker.ts); chunk bytes stay in shared memory. */
interface SharedChunk {
  /** The chunk is input[0, length). */
  input: SharedArrayBuffer;
  length: number;
}

/** Verdict[0] of an `identify` job: the worker waits while it is PENDING, then seals or drops the chunk. */
export const VERDICT_PENDING = 0;
export const VERDICT_SEAL = 1;
export const VERDICT_SKIP = 2;

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
    })
  | (SharedChunk & { kind: 'seal'; key: Uint8Array; id: string; output: SharedArrayBuffer });

export type WorkerReply =
  | { kind: 'id'; id: string }
  | { kind: 'sealed'; codec: number; length: number }
  | { kind: 'failed'; message: string; code?: string };
