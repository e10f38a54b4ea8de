import type { Source } from '../../api/backuppolicy.ts';
import type { OperatorContext } from '../context.ts';

/** The PVCs a volume source names: its claim, or those matching its selector now (sorted). */
export async function claimsOf(ctx: OperatorContext, namespace: string, volume: Source['volume']): Promise<string[]> {
  if (!volume) return [];
  if (volume.claimName) return [volume.claimName];
  const selector = Object.entries(volume.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const list = await ctx.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector });
  return list.items.map((c) => c.metadata?.name ?? '').sort();
}
