import type { OperatorContext } from '../context.ts';

/**
 * Whether a namespace is being deleted (or already gone): nothing new can be created in it, so a
 * finalizer there must let go instead of waiting for a Job that can never start.
 */
export async function namespaceTerminating(ctx: OperatorContext, namespace: string): Promise<boolean> {
  try {
    const found = await ctx.core.readNamespace({ name: namespace });
    return Boolean(found.metadata?.deletionTimestamp) || found.status?.phase === 'Terminating';
  } catch (error) {
    if ((error as { code?: number }).code === 404) return true;
    throw error;
  }
}
