import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory; kept when TIDEMARK_KEEP_WORKDIR is set, for reading logs after a failure. */
export function makeWorkDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `tidemark-${prefix}-`));
  return {
    path,
    remove: () => {
      if (!process.env.TIDEMARK_KEEP_WORKDIR) rmSync(path, { recursive: true, force: true });
    },
  };
}
