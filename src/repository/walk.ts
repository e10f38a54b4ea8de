import type { ChunkStore } from './chunk-store.ts';
import type { ChunkId } from './format.ts';
import { decodeName, decodeTree, type TreeEntry } from './tree.ts';

/**
 * Visits every tree of a snapshot depth-first, each tree once per call (trees shared between
 * directories or snapshots are skipped via `seen`).
 */
export async function walkTrees(
  store: ChunkStore,
  root: ChunkId,
  visit: (treeId: ChunkId, entries: TreeEntry[], path: string) => void | Promise<void>,
  seen = new Set<ChunkId>(),
  path = '',
): Promise<void> {
  if (seen.has(root)) return;
  seen.add(root);
  const { entries } = decodeTree(await store.get(root));
  await visit(root, entries, path || '/');
  for (const entry of entries) {
    if (entry.type === 'dir' && entry.subtree)
      await walkTrees(store, entry.subtree, visit, seen, `${path}/${decodeName(entry).toString('utf8')}`);
  }
}
