import { parentPort } from 'node:worker_threads';

/**
 * The real pipeline worker, descheduled for 300 ms between posting a chunk's id and waiting for the pool's
 * verdict on it, as the OS may do to any thread on a busy machine.
 */
const port = parentPort;
if (!port) throw new Error('late-waiting-worker.ts runs as a worker thread');
const post = port.postMessage.bind(port);
const nap = new Int32Array(new SharedArrayBuffer(4));
port.postMessage = (reply: { kind: string }) => {
  post(reply);
  if (reply.kind === 'id') Atomics.wait(nap, 0, 0, 300);
};
await import('../chunk-worker.ts');
