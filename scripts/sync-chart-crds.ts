// Copies crds/*.tidemark.dev.yaml into charts/tidemark/crds/ (Helm installs CRDs only from there).
// `--check` changes nothing and fails when the chart's copies differ from crds/.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../test/harness/tools.ts';

const source = join(repoRoot, 'crds');
const target = join(repoRoot, 'charts', 'tidemark', 'crds');
const isCrd = (name: string) => name.endsWith('.tidemark.dev.yaml');
const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter(isCrd).sort() : []);

const check = process.argv.includes('--check');
const wanted = new Map(list(source).map((name) => [name, readFileSync(join(source, name), 'utf8')]));
const differing: string[] = [];

for (const [name, content] of wanted) {
  const path = join(target, name);
  if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
  differing.push(name);
  if (!check) {
    mkdirSync(target, { recursive: true });
    writeFileSync(path, content);
    console.log(`wrote charts/tidemark/crds/${name}`);
  }
}
for (const name of list(target)) {
  if (wanted.has(name)) continue;
  differing.push(name);
  if (!check) {
    rmSync(join(target, name));
    console.log(`removed charts/tidemark/crds/${name}`);
  }
}

if (check && differing.length) {
  console.error(
    `charts/tidemark/crds/ differs from crds/, run \`tsx scripts/sync-chart-crds.ts\`: ${differing.join(', ')}`,
  );
  process.exit(1);
}
