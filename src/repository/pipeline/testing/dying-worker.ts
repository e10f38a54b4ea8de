import { parentPort } from 'node:worker_threads';

/** A pipeline worker that dies on its first job: exits (job.length odd) or throws (even). */
parentPort?.on('message', (job: { length: number }) => {
  if (job.length % 2 === 1) process.exit(3);
  throw new Error('worker bug');
});
