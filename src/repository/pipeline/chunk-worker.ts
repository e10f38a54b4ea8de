import { parentPort } from 'node:worker_threads';
import type { ChunkId } from '../format.ts';
import { chunkIdOf, sealChunk } from './chunk-work.ts';
import { VERDICT_SEAL, type WorkerJob, type WorkerReply } from './protocol.ts';

/** A pipeline worker: runs one job at a time on chunks in shared memory (see pool.ts). */
const port = parentPort;
if (!port) throw new Error('chunk-worker.ts runs as a worker thread of the chunk pipeline');
port.on('message', (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    const data = new Uint8Array(job.input, 0, job.length);
    if (job.kind === 'identify') {
      const id = chunkIdOf(job.key, job.chain, data);
      port.postMessage({ kind: 'id', id } satisfies WorkerReply);
      // The pool answers as soon as it has looked the id up (it always does, see ChunkPipeline.identify).
      Atomics.wait(job.verdict, 0, job.pending);
      if (Atomics.load(job.verdict, 0) !== job.pending + VERDICT_SEAL) return;
      reply = { kind: 'sealed', ...sealChunk(job.sealKey, id, data, new Uint8Array(job.output)) };
    } else if (job.kind === 'seal-batch') reply = sealBatch(job, data);
    else reply = { kind: 'sealed', ...sealChunk(job.key, job.id as ChunkId, data, new Uint8Array(job.output)) };
  } catch (error) {
    const { message, code } = error as { message?: string; code?: string };
    reply = { kind: 'failed', message: String(message ?? error), ...(code ? { code } : {}) };
  }
  port.postMessage(reply);
});

function sealBatch(job: Extract<WorkerJob, { kind: 'seal-batch' }>, data: Uint8Array): WorkerReply {
  const output = new Uint8Array(job.output);
  const records: number[] = [];
  let start = 0;
  let at = 0;
  for (const [i, end] of job.ends.entries()) {
    const sealed = sealChunk(job.key, job.ids[i] as ChunkId, data.subarray(start, end), output.subarray(at));
    records.push(sealed.codec, sealed.length);
    at += sealed.length;
    start = end;
  }
  return { kind: 'sealed-batch', records };
}
