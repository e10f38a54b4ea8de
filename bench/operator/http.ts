// A keep-alive JSON client for the API server, for creating objects in bulk: the generated client opens a
// new TLS connection per request, which made creating the Backup history cost ~10 requests per second here.
import { Agent, request } from 'node:https';
import type * as k8s from '@kubernetes/client-node';

export interface BulkClient {
  send<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<T>;
  close(): void;
}

export function bulkClient(kc: k8s.KubeConfig, connections: number): BulkClient {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token) throw new Error('kubeconfig has no cluster or token');
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: connections, ...(ca ? { ca } : {}) });
  const send = <T>(method: string, path: string, body?: unknown) =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? '' : JSON.stringify(body);
      const req = request(
        new URL(path, cluster.server),
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${user.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 0) >= 300)
              reject(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`));
            else resolve(JSON.parse(text) as T);
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return { send, close: () => agent.destroy() };
}
