/** Messages between the pool (pool.ts) and its workers (chunk-worker.ts); chunk bytes stay in shared memory. */
interface SharedChunk {
  /** The chunk is input[0, length). */
  input: SharedArrayBuffer;
  length: number;
}

export type WorkerJob =
  | (SharedChunk & { kind: 'id'; key: Uint8Array; chain: Uint8Array })
  | (SharedChunk & { kind: 'seal'; key: Uint8Array; id: string; output: SharedArrayBuffer });

export type WorkerReply =
  | { kind: 'id'; id: string }
  | { kind: 'sealed'; codec: number; length: number }
  | { kind: 'failed'; message: string; code?: string };
