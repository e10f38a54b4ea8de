// Counts requests the API server served, from its own `apiserver_request_total` counter (GET /metrics as
// the admin user). The counter has no client label; the operator's requests are told apart by what they
// touch (see isOperatorRequest).
import { request } from 'node:https';
import type * as k8s from '@kubernetes/client-node';

/** verb group/resource[/subresource] → count. */
export type RequestCounts = Map<string, number>;

export interface RequestKey {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
}

export const keyOf = (k: RequestKey) =>
  `${k.verb} ${k.group || 'core'}/${k.resource}${k.subresource ? `/${k.subresource}` : ''}`;

export function parseKey(key: string): RequestKey {
  const [verb = '', path = ''] = key.split(' ');
  const [group = '', resource = '', subresource = ''] = path.split('/');
  return { verb, group: group === 'core' ? '' : group, resource, subresource };
}

/**
 * During the benchmark only the operator reads or writes Tidemark's resources and Events (the
 * controller manager only lists and watches them, and has nothing to do: no Job ever exists). Jobs,
 * PVCs, pods and ServiceAccounts are the operator's too when it runs backups.
 */
export function isOperatorRequest(k: RequestKey): boolean {
  if (k.group === 'tidemark.dev') return true;
  if (k.group === '' && ['events', 'persistentvolumeclaims', 'pods', 'serviceaccounts'].includes(k.resource))
    return true;
  return k.group === 'batch' && k.resource === 'jobs';
}

/** Long-running requests a controller keeps open; counted apart from the requests that cost something. */
export const isWatch = (k: RequestKey) => k.verb === 'WATCH' || k.verb === 'WATCHLIST';

export function get(kc: k8s.KubeConfig, path: string): Promise<string> {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token) throw new Error('kubeconfig has no cluster or token');
  const url = new URL(path, cluster.server);
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : undefined;
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${user.token}` }, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${path}: HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const LINE = /^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$/;
const LABEL = /(\w+)="([^"]*)"/g;

/** The API server's request counter now, summed over response codes and scopes. */
export async function requestCounts(kc: k8s.KubeConfig): Promise<RequestCounts> {
  const counts: RequestCounts = new Map();
  for (const line of (await get(kc, '/metrics')).split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[1] ?? '').matchAll(LABEL)].map((m) => [m[1], m[2]]));
    const key = keyOf({
      verb: labels.verb ?? '',
      group: labels.group ?? '',
      resource: labels.resource ?? '',
      subresource: labels.subresource ?? '',
    });
    counts.set(key, (counts.get(key) ?? 0) + Number(match[2]));
  }
  return counts;
}

/** after − before, keys with no change left out. */
export function difference(before: RequestCounts, after: RequestCounts): RequestCounts {
  const diff: RequestCounts = new Map();
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) diff.set(key, delta);
  }
  return diff;
}

export function total(counts: RequestCounts, filter: (k: RequestKey) => boolean): number {
  let sum = 0;
  for (const [key, value] of counts) if (filter(parseKey(key))) sum += value;
  return sum;
}

/** The sum of a metric's samples in the API server's /metrics (e.g. apiserver_storage_size_bytes: etcd's db size). */
export async function metricSum(kc: k8s.KubeConfig, name: string): Promise<number | undefined> {
  let sum: number | undefined;
  for (const line of (await get(kc, '/metrics')).split('\n')) {
    if (!line.startsWith(name) || !/[ {]/.test(line.charAt(name.length))) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
