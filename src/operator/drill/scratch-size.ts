import type * as k8s from '@kubernetes/client-node';
import type { Source } from '../../api/backuppolicy.ts';

const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Bytes of a Kubernetes storage quantity (`10Gi`, `500M`, `1.5Gi`); undefined for one it does not read. */
export function quantityBytes(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(quantity.trim());
  if (!match) return undefined;
  return Math.ceil(Number(match[1]) * (SUFFIX[match[2] ?? ''] ?? 1));
}

/**
 * The storage a volume source's scratch PVC requests when the policy names none: what its PVCs (by
 * name or selector, in `claims`) request together; undefined when none is found or one is unreadable.
 */
export function scratchSize(source: Source, claims: k8s.V1PersistentVolumeClaim[]): string | undefined {
  const volume = source.volume;
  if (!volume) return undefined;
  // Not the operator's own PVCs (scratch and snapshot-restored ones), whatever labels they carry.
  const selected = claims.filter((c) =>
    volume.claimName
      ? c.metadata?.name === volume.claimName
      : c.metadata?.labels?.['app.kubernetes.io/managed-by'] !== 'tidemark' &&
        Object.entries(volume.selector?.matchLabels ?? {}).every(([k, v]) => c.metadata?.labels?.[k] === v),
  );
  const requests = selected.map((c) => c.spec?.resources?.requests?.storage);
  if (requests.length === 0) return undefined;
  if (requests.length === 1) return requests[0];
  const bytes = requests.map((r) => (r === undefined ? undefined : quantityBytes(r)));
  if (bytes.some((b) => b === undefined)) return undefined;
  return String(bytes.reduce((a = 0, b = 0) => a + b, 0));
}
