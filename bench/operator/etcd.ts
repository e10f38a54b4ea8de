// Writes objects straight into the test control plane's etcd, encoded as kube-apiserver stores a custom
// resource: JSON with every object's keys sorted (Go's encoding/json of an unstructured map) and a trailing
// newline, at /registry/<group>/<resource>/<namespace>/<name>. Through etcd's JSON gateway (/v3/kv/*), in
// transactions of many puts: the API server's create-then-/status path ran at ~22 Backups/s on this machine.
// The API server's watch cache sees the puts as events, as it would see another API server's writes.

/** etcd's default --max-txn-ops is 128; a Backup with 40 tables is ~5 KB, well under --max-request-bytes. */
const PUTS_PER_TXN = 100;

export const storedKey = (group: string, resource: string, namespace: string, name: string) =>
  `/registry/${group}/${resource}/${namespace}/${name}`;

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}

/**
 * The bytes the API server stores for a custom resource. Go's encoder also escapes <, > and & in strings;
 * the benchmark's objects hold none, and a witness compared byte for byte (history.ts) would show one.
 */
export const storedJson = (object: unknown) => `${JSON.stringify(sortKeys(object))}\n`;

const b64 = (text: string) => Buffer.from(text).toString('base64');

async function call<T>(etcd: string, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${etcd}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

/** The value stored at `key`, or undefined. */
export async function getRaw(etcd: string, key: string): Promise<string | undefined> {
  const { kvs } = await call<{ kvs?: { value: string }[] }>(etcd, '/v3/kv/range', { key: b64(key) });
  const value = kvs?.[0]?.value;
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

/** Puts every entry, PUTS_PER_TXN per transaction, `concurrency` transactions in flight. */
export async function putAll(
  etcd: string,
  entries: Iterable<{ key: string; value: string }>,
  concurrency: number,
  onBatch: (put: number) => void = () => {},
): Promise<void> {
  const iterator = entries[Symbol.iterator]();
  let put = 0;
  const worker = async () => {
    for (;;) {
      const batch: { requestPut: { key: string; value: string } }[] = [];
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        batch.push({ requestPut: { key: b64(next.value.key), value: b64(next.value.value) } });
        if (batch.length === PUTS_PER_TXN) break;
      }
      if (batch.length === 0) return;
      await call(etcd, '/v3/kv/txn', { success: batch });
      put += batch.length;
      onBatch(put);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** etcd's db file size, and how much of it holds live data (etcd's maintenance status). */
export async function dbSize(etcd: string): Promise<{ bytes: number; inUseBytes: number }> {
  const status = await call<{ dbSize?: string; dbSizeInUse?: string }>(etcd, '/v3/maintenance/status', {});
  return { bytes: Number(status.dbSize ?? Number.NaN), inUseBytes: Number(status.dbSizeInUse ?? Number.NaN) };
}
