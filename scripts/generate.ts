// Writes crds/ and docs/api.md from src/api (the one source of truth). `--check` fails on drift instead.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { renderGeneratedFiles } from '../src/api/render.ts';
import { repoRoot } from '../test/harness/tools.ts';

const check = process.argv.includes('--check');
const stale: string[] = [];
for (const [path, content] of renderGeneratedFiles()) {
  const file = join(repoRoot, path);
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  if (check) stale.push(path);
  else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    console.log(`wrote ${path}`);
  }
}
if (stale.length) {
  console.error(`generated files are out of date, run \`npm run generate\`: ${stale.join(', ')}`);
  process.exit(1);
}
