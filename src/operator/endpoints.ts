import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TidemarkError } from '../errors.ts';
import { log } from '../log.ts';
import type { OperatorMetrics } from '../metrics/operator-metrics.ts';

export interface EndpointOptions {
  /** Port for /metrics (0: any free port, logged). */
  metricsPort: number;
  /** Port for /healthz and /readyz (0: any free port, logged). */
  healthPort: number;
  host?: string;
}

/** What /readyz asks: undefined when ready, else why not. */
export type Readiness = () => string | undefined;

export interface Endpoints {
  metricsPort: number;
  healthPort: number;
  close(): Promise<void>;
}

/**
 * An event loop stalled this long (a synchronous pass that never yields) makes /healthz fail, so the
 * kubelet restarts a process that is wedged even though it still answers between stalls.
 */
const STALLED_LOOP_MS = 10_000;

/**
 * Serves /metrics, and the probes: /healthz says whether this process's event loop runs (it never
 * calls the API server, so a slow API server cannot get the operator restarted); /readyz whether the
 * operator is ready (`ready`).
 */
export async function serveEndpoints(
  options: EndpointOptions,
  metrics: OperatorMetrics,
  ready: Readiness,
): Promise<Endpoints> {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const health = createServer(
    handle({
      '/healthz': () => {
        const stalledMs = loop.max / 1e6;
        loop.reset();
        return stalledMs > STALLED_LOOP_MS
          ? [500, `event loop stalled for ${Math.round(stalledMs)} ms\n`]
          : [200, 'ok\n'];
      },
      '/readyz': () => {
        const why = ready();
        return why === undefined ? [200, 'ok\n'] : [503, `not ready: ${why}\n`];
      },
    }),
  );
  const metricsServer = createServer(
    handle({
      '/metrics': async () => [200, await metrics.render(), metrics.contentType],
    }),
  );
  const host = options.host ?? '0.0.0.0';
  const servers: Server[] = [];
  try {
    const healthPort = await listen(health, options.healthPort, host, 'health');
    servers.push(health);
    const metricsPort = await listen(metricsServer, options.metricsPort, host, 'metrics');
    servers.push(metricsServer);
    log.info({ event: 'endpoints-listening', metricsPort, healthPort }, 'serving /metrics, /healthz and /readyz');
    return {
      metricsPort,
      healthPort,
      close: async () => {
        loop.disable();
        await Promise.all(servers.map((s) => close(s)));
      },
    };
  } catch (error) {
    loop.disable();
    await Promise.all(servers.map((s) => close(s)));
    throw error;
  }
}

type Route = () => [number, string, string?] | Promise<[number, string, string?]>;

function handle(routes: Record<string, Route>) {
  return (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const route = routes[path];
    if (!route) return reply(response, 404, `no ${path} here; try ${Object.keys(routes).join(' or ')}\n`);
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(response, 405, 'GET only\n');
    Promise.resolve()
      .then(route)
      .then(
        ([status, body, type]) => reply(response, status, request.method === 'HEAD' ? '' : body, type),
        (error: Error) => {
          log.error({ event: 'endpoint-error', path, err: error.message }, 'endpoint failed');
          reply(response, 500, `${path} failed: ${error.message}\n`);
        },
      );
  };
}

function reply(response: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}

function listen(server: Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new TidemarkError(
          'InvalidArgument',
          `cannot serve the ${what} endpoint on ${host}:${port}: ${error.code ?? error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
