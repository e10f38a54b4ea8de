// A real Prometheus (Debian's) scraping static targets every second, optionally loading rule files,
// queried through its HTTP API.
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess, waitUntil } from './process.ts';
import { systemTool } from './tools.ts';

export interface PrometheusOptions {
  /** The scrape job's name (the `job` label). */
  job: string;
  /** host:port of each target, scraped at /metrics. */
  targets: string[];
  /** Labels every target gets, as the Prometheus Operator adds `namespace`, `pod`, `service`. */
  targetLabels?: Record<string, string>;
  /** Rule files' contents, by file name. */
  ruleFiles?: Record<string, string>;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  url: string;
  process: ManagedProcess;
  /** An instant query; a query Prometheus refuses rejects with its error and the query. */
  query(expr: string): Promise<Sample[]>;
  /** The rules as Prometheus evaluates them: name, health and last error. */
  rules(): Promise<{ name: string; health: string; lastError?: string }[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(workDir: string, options: PrometheusOptions): Promise<PrometheusServer> {
  const dir = join(workDir, 'prometheus');
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const [name, content] of Object.entries(options.ruleFiles ?? {})) writeFileSync(join(dir, name), content);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: Object.keys(options.ruleFiles ?? {}),
      scrape_configs: [
        {
          job_name: options.job,
          // The targets' own labels (Tidemark's tenant `namespace`) win over targetLabels, as with
          // the ServiceMonitor's honorLabels.
          honor_labels: true,
          static_configs: [{ targets: options.targets, labels: options.targetLabels ?? {} }],
        },
      ],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const process = startProcess(
    'prometheus',
    systemTool('prometheus', 'prometheus'),
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { cwd: dir, logFile: join(workDir, 'prometheus.log') },
  );
  await waitUntil('Prometheus ready', async () => (await fetch(`${url}/-/ready`)).ok, { timeoutMs: 30_000, process });

  const api = async <T>(path: string, what: string): Promise<T> => {
    const response = await fetch(`${url}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus refused ${what}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    process,
    async query(expr) {
      const data = await api<{ resultType: string; result: Sample[] | [number, string] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
        `the query ${expr}`,
      );
      // A scalar result (e.g. time()) is one sample without labels.
      return data.resultType === 'scalar'
        ? [{ metric: {}, value: data.result as [number, string] }]
        : (data.result as Sample[]);
    },
    async rules() {
      const data = await api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>(
        '/api/v1/rules',
        'the rules',
      );
      return data.groups.flatMap((g) => g.rules.map(({ name, health, lastError }) => ({ name, health, lastError })));
    },
    stop: () => process.stop(),
  };
}
