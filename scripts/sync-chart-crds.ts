// Copies into charts/tidemark/ what Helm can only read from inside the chart: crds/*.tidemark.dev.yaml
// into crds/ (Helm installs CRDs only from there), and deploy/monitoring's alert rules and dashboard
// into monitoring/ (the chart's PrometheusRule and dashboard ConfigMap render them).
// `--check` changes nothing and fails when the chart's copies differ from their sources.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../test/harness/tools.ts';

const chart = join(repoRoot, 'charts', 'tidemark');
const copies = [
  {
    source: join(repoRoot, 'crds'),
    target: join(chart, 'crds'),
    wanted: (n: string) => n.endsWith('.tidemark.dev.yaml'),
  },
  {
    source: join(repoRoot, 'deploy', 'monitoring'),
    target: join(chart, 'monitoring'),
    wanted: (n: string) => n === 'prometheusrule.yaml' || n === 'dashboard.json',
  },
];

const check = process.argv.includes('--check');
const differing: string[] = [];

for (const { source, target, wanted } of copies) {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter(wanted).sort() : []);
  const contents = new Map(list(source).map((name) => [name, readFileSync(join(source, name), 'utf8')]));
  for (const [name, content] of contents) {
    const path = join(target, name);
    if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
    differing.push(relative(repoRoot, path));
    if (!check) {
      mkdirSync(target, { recursive: true });
      writeFileSync(path, content);
      console.log(`wrote ${relative(repoRoot, path)}`);
    }
  }
  for (const name of list(target)) {
    if (contents.has(name)) continue;
    differing.push(relative(repoRoot, join(target, name)));
    if (!check) {
      rmSync(join(target, name));
      console.log(`removed ${relative(repoRoot, join(target, name))}`);
    }
  }
}

if (check && differing.length) {
  console.error(
    `charts/tidemark/ differs from crds/ or deploy/monitoring/, run \`tsx scripts/sync-chart-crds.ts\`: ${differing.join(', ')}`,
  );
  process.exit(1);
}
