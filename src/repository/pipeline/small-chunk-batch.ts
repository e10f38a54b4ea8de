import type { ChunkId, ChunkType } from '../format.ts';
import { sealedBound } from './chunk-work.ts';

/** Bytes of small chunks sealed in one pipeline job: ~250–1,000 small files, one message to a worker each way. */
export const BATCH_BYTES = 1024 * 1024;
/** Chunks in one batch at most (tiny trees and empty-ish files would otherwise make one huge message). */
const BATCH_CHUNKS = 1024;

/**
 * Small chunks (shorter than the chunk store's inline limit) gathered back to back in shared memory, to be
 * compressed and sealed on a pipeline worker in one job (`ChunkPipeline.sealBatch`) instead of one by one on
 * the thread that walks and reads. Their ids are computed by the caller, so a file's tree entry never waits
 * for the seal. Reused once its records are in a pack.
 */
export class SmallChunkBatch {
  readonly input = new SharedArrayBuffer(BATCH_BYTES);
  /** Room for every record: each is at most its chunk plus the envelope. */
  readonly output = new SharedArrayBuffer(sealedBound(0) * BATCH_CHUNKS + BATCH_BYTES);
  readonly ids: ChunkId[] = [];
  readonly types: ChunkType[] = [];
  /** Where chunk i ends in `input` (it starts where chunk i - 1 ends). */
  readonly ends: number[] = [];
  private bytes = new Uint8Array(this.input);

  get count(): number {
    return this.ids.length;
  }

  get length(): number {
    return this.ends.at(-1) ?? 0;
  }

  /** Whether a chunk of `length` bytes still fits (any chunk fits an empty batch: see the inline limit). */
  fits(length: number): boolean {
    return this.count < BATCH_CHUNKS && this.length + length <= BATCH_BYTES;
  }

  add(id: ChunkId, type: ChunkType, parts: readonly Uint8Array[]): void {
    let at = this.length;
    for (const part of parts) {
      this.bytes.set(part, at);
      at += part.length;
    }
    this.ids.push(id);
    this.types.push(type);
    this.ends.push(at);
  }

  /** Empties the batch for reuse. */
  clear(): this {
    this.ids.length = 0;
    this.types.length = 0;
    this.ends.length = 0;
    return this;
  }
}
