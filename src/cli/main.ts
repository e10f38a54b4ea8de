#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { AGENT_TASKS, type AgentTaskName } from '../agent/tasks/names.ts';
import { TidemarkError } from '../errors.ts';
import { version } from '../version.ts';
import { registerDataCommands } from './data.ts';
import { registerKubectlCommands } from './kubectl/plugin.ts';
import { registerRepoCommands } from './repo.ts';

/**
 * The one `tidemark` binary. Subcommands only parse arguments and delegate; each action imports what it
 * runs, so a command loads only its own modules (the Kubernetes client alone takes half a second).
 */
export function buildProgram(): Command {
  const program = new Command('tidemark')
    .description('Backups of tenant databases and document volumes on Kubernetes, with proof of RPO and RTO.')
    .version(version, '-v, --version');

  program
    .command('crds')
    .description('print the CustomResourceDefinitions (e.g. `tidemark crds | kubectl apply --server-side -f -`)')
    .action(async () => {
      const { renderGeneratedFiles } = await import('../api/render.ts');
      const crds = [...renderGeneratedFiles()].filter(([path]) => path.endsWith('.tidemark.dev.yaml'));
      process.stdout.write(crds.map(([, yaml]) => yaml).join('---\n'));
    });

  program
    .command('agent')
    .description('what a Tidemark Job runs; reads its task from the environment (see src/agent/agent.ts)')
    .argument('<task>', AGENT_TASKS.join(', '))
    .action(async (task: string) => {
      if (!(AGENT_TASKS as readonly string[]).includes(task))
        throw new TidemarkError('InvalidArgument', `unknown agent task ${task}: ${AGENT_TASKS.join(', ')}`);
      const { runAgent } = await import('../agent/agent.ts');
      const result = await runAgent(task as AgentTaskName);
      if (!result.ok) process.exitCode = 1;
    });

  program
    .command('operator')
    .description('run the controllers (in the cluster, or against $KUBECONFIG)')
    .option('--leader-elect', 'hold a Lease so only one replica acts')
    .option('--lease-namespace <ns>', 'namespace of the Lease (default: POD_NAMESPACE or tidemark-system)')
    .option('--lease-duration <seconds>', 'how long a silent leader keeps the Lease', '15')
    .option('--agent-image <image>', 'image of agent Jobs (or TIDEMARK_AGENT_IMAGE)')
    .option('--metrics-port <port>', 'port of /metrics (0: any free port)', '8080')
    .option('--health-port <port>', 'port of /healthz and /readyz (0: any free port)', '8081')
    .option(
      '--pod-start-timeout <seconds>',
      'fail an agent Job whose pod cannot start (missing Secret or key, image pull) after this long',
      '120',
    )
    .option(
      '--storage-retry-budget <duration>',
      'how long each storage operation of an agent keeps retrying through an outage, e.g. 5m (or TIDEMARK_RETRY_BUDGET; default 2m)',
    )
    .action(
      async (options: {
        leaderElect?: boolean;
        leaseNamespace?: string;
        leaseDuration: string;
        agentImage?: string;
        podStartTimeout: string;
        storageRetryBudget?: string;
        metricsPort: string;
        healthPort: string;
      }) => {
        const retryBudget = options.storageRetryBudget ?? process.env.TIDEMARK_RETRY_BUDGET;
        if (retryBudget) (await import('../api/duration.ts')).parseDuration(retryBudget, { allowZero: true });
        const [{ KubeConfig }, { runOperator }] = await Promise.all([
          import('@kubernetes/client-node'),
          import('../operator/operator.ts'),
        ]);
        const kc = new KubeConfig();
        kc.loadFromDefault();
        const stop = new AbortController();
        for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
        await runOperator(
          kc,
          {
            settings: {
              image:
                options.agentImage ?? process.env.TIDEMARK_AGENT_IMAGE ?? `ghcr.io/tidemark-dev/tidemark:${version}`,
              serviceAccountName: 'tidemark-agent',
              podStartTimeoutMs: positiveSeconds('--pod-start-timeout', options.podStartTimeout) * 1000,
              ...(retryBudget ? { retryBudget } : {}),
            },
            endpoints: {
              metricsPort: port('--metrics-port', options.metricsPort),
              healthPort: port('--health-port', options.healthPort),
            },
            ...(options.leaderElect
              ? {
                  leaderElection: {
                    namespace: options.leaseNamespace ?? process.env.POD_NAMESPACE ?? 'tidemark-system',
                    leaseDurationSeconds: Number(options.leaseDuration),
                  },
                }
              : {}),
          },
          stop.signal,
        );
        // Everything the operator finishes on the way out is finished (reconciles, events, endpoints). A
        // request still pending, such as an informer's first list (client-node cannot abort one), must not
        // keep the process past its grace period.
        process.exit(0);
      },
    );

  registerDataCommands(program);
  registerRepoCommands(program);
  registerKubectlCommands(program);
  return program;
}

function port(flag: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65535)
    throw new TidemarkError('InvalidArgument', `${flag} must be a port number (0-65535), not ${value}`);
  return number;
}

function positiveSeconds(flag: string, value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new TidemarkError('InvalidArgument', `${flag} must be a positive number of seconds, not ${value}`);
  return seconds;
}

export async function main(argv: string[]): Promise<void> {
  // `tidemark crds | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // One line a person can act on; the code lets scripts branch without parsing text.
    const code = (error as { code?: string }).code;
    process.stderr.write(`tidemark: ${(error as Error).message}${code ? ` (${code})` : ''}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv);
