import { parentPort } from 'node:worker_threads';
import type { ChunkId } from '../format.ts';
import { chunkIdOf, sealChunk } from './chunk-work.ts';
import type { WorkerJob, WorkerReply } from './protocol.ts';

/** A pipeline worker: runs one job at a time on chunks in shared memory (see pool.ts). */
const port = parentPort;
if (!port) throw new Error('chunk-worker.ts runs as a worker thread of the chunk pipeline');
port.on('message', (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    const data = new Uint8Array(job.input, 0, job.length);
    reply =
      job.kind === 'id'
        ? { kind: 'id', id: chunkIdOf(job.key, job.chain, data) }
        : { kind: 'sealed', ...sealChunk(job.key, job.id as ChunkId, data, new Uint8Array(job.output)) };
  } catch (error) {
    const { message, code } = error as { message?: string; code?: string };
    reply = { kind: 'failed', message: String(message ?? error), ...(code ? { code } : {}) };
  }
  port.postMessage(reply);
});
