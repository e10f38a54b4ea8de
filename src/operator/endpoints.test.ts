// The HTTP endpoints without a cluster: liveness from the event loop alone, readiness as told,
// /metrics in the Prometheus text format, and clear answers to anything else.
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { OperatorMetrics } from '../metrics/operator-metrics.ts';
import { type Endpoints, serveEndpoints } from './endpoints.ts';

let endpoints: Endpoints;
let notReady: string | undefined = 'informer caches not synced yet';

before(async () => {
  endpoints = await serveEndpoints(
    { metricsPort: 0, healthPort: 0, host: '127.0.0.1', stalledLoopMs: 200 },
    new OperatorMetrics(),
    () => notReady,
  );
});

after(() => endpoints.close());

async function get(port: number, path: string, method = 'GET') {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

async function healthyWithin(ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await get(endpoints.healthPort, '/healthz')).status === 200) return true;
    await sleep(50);
  }
  return false;
}

describe('endpoints', () => {
  it('/readyz says why not until ready', async () => {
    assert.deepEqual(await get(endpoints.healthPort, '/readyz'), {
      status: 503,
      body: 'not ready: informer caches not synced yet\n',
      type: 'text/plain; charset=utf-8',
    });
    notReady = undefined;
    assert.equal((await get(endpoints.healthPort, '/readyz')).status, 200);
  });

  it('/healthz fails after the event loop stalled, and recovers once it runs again', async () => {
    // On a loaded machine the process itself may have stalled before: start from a healthy answer.
    assert.equal(await healthyWithin(5000), true, '/healthz answers 200 while the loop runs');
    const until = Date.now() + 500;
    while (Date.now() < until) {
      // a synchronous pass that never yields
    }
    const stalled = await get(endpoints.healthPort, '/healthz');
    assert.equal(stalled.status, 500);
    assert.match(stalled.body, /event loop stalled for \d+ ms/);
    assert.equal(await healthyWithin(5000), true, '/healthz recovers once the loop runs again');
  });

  it('/metrics in the Prometheus text format on its own port; anything else a clear 404 or 405', async () => {
    const metrics = await get(endpoints.metricsPort, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(metrics.body, /^tidemark_build_info\{version="[^"]+"\} 1$/m);
    assert.equal((await get(endpoints.healthPort, '/metrics')).status, 404);
    assert.equal((await get(endpoints.metricsPort, '/healthz')).status, 404);
    assert.equal((await get(endpoints.metricsPort, '/metrics', 'POST')).status, 405);
  });

  it('/metrics gzipped when the scraper asks for it, as Prometheus does', async () => {
    const scraped = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) =>
      httpGet(
        { port: endpoints.metricsPort, host: '127.0.0.1', path: '/metrics', headers: { 'accept-encoding': 'gzip' } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('end', () =>
            resolve({ encoding: response.headers['content-encoding'], body: Buffer.concat(chunks) }),
          );
        },
      ).on('error', reject),
    );
    assert.equal(scraped.encoding, 'gzip');
    assert.match(gunzipSync(scraped.body).toString(), /^tidemark_build_info\{version="[^"]+"\} 1$/m);
  });
});
