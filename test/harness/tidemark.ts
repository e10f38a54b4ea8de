import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Backup } from '../../src/api/kinds.ts';
import { NODE_RUNTIME_FLAGS } from '../../src/cli/runtime-flags.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStorage } from '../../src/repository/storage/url.ts';
import { type AzuriteServer, startAzurite } from './azurite.ts';
import { type Cluster, startCluster } from './cluster.ts';
import { logDigest, reportOnFailure } from './failure-report.ts';
import { type ProcessKubelet, startProcessKubelet } from './kubelet/kubelet.ts';
import { type PostgresServer, startPostgres } from './postgres.ts';
import { type ManagedProcess, startProcess } from './process.ts';
import { type S3Server, startS3 } from './s3.ts';
import { repoRoot } from './tools.ts';

/** The agent image name tests use; the process kubelet runs it as `tidemark` from the work tree. */
export const AGENT_IMAGE = 'ghcr.io/tidemark-dev/tidemark:test';
export const PASSPHRASE = 'tidemark test passphrase';
const tidemark = [
  process.execPath,
  ...NODE_RUNTIME_FLAGS,
  '--import',
  import.meta.resolve('tsx'),
  join(repoRoot, 'src/cli/main.ts'),
];

/**
 * A control plane with a process kubelet that runs agent Jobs, an S3 server and an initialised
 * primary repository `primary`; optionally Azurite with an empty replica repository `replica`
 * (region westeurope), and a PostgreSQL server with its connection Secret `pg-main`.
 */
export interface TidemarkEnvironment {
  cluster: Cluster;
  kubelet: ProcessKubelet;
  s3: S3Server;
  azurite?: AzuriteServer;
  postgres?: PostgresServer;
  namespace: string;
  primaryUrl: string;
  s3Env: Record<string, string>;
  apply(objects: object[]): Promise<void>;
  backups(): Promise<Backup[]>;
  /** One of Tidemark's objects (`plural` e.g. 'backuppolicies'), undefined when it does not exist. */
  get<T>(plural: string, name: string, namespace?: string): Promise<T | undefined>;
  /** The same, for one that must exist. */
  read<T>(plural: string, name: string, namespace?: string): Promise<T>;
  /** `tidemark operator` as its own process (so it can be killed), logging into the work dir. */
  startOperator(name: string, args?: string[], options?: { env?: Record<string, string> }): ManagedProcess;
  stop(): Promise<void>;
}

export interface EnvironmentOptions {
  namespace?: string;
  azurite?: boolean;
  postgres?: boolean;
}

export async function startTidemarkEnvironment(
  workDir: string,
  options: EnvironmentOptions = {},
): Promise<TidemarkEnvironment> {
  const namespace = options.namespace ?? 'tenants';
  const [cluster, s3, azurite, postgres] = await Promise.all([
    startCluster(join(workDir, 'cluster')),
    startS3(workDir),
    options.azurite ? startAzurite(workDir) : undefined,
    options.postgres ? startPostgres(workDir) : undefined,
  ]);
  const kubelet = await startProcessKubelet(cluster.kubeConfig, {
    workDir: join(workDir, 'kubelet'),
    imageEntrypoints: { [AGENT_IMAGE]: tidemark },
    baseEnv: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  await s3.createBucket('backups');
  const s3Env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  const primaryUrl = `s3://backups/${namespace}?region=us-east-1&endpoint=${encodeURIComponent(s3.endpoint)}&pathStyle=true`;
  await Repository.init(openStorage(primaryUrl, s3Env), Buffer.from(PASSPHRASE), { scrypt: { N: 1024, r: 8, p: 1 } });
  const apply = async (objects: object[]) => {
    await cluster.kubectl(['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
  };
  await apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    secretObject(namespace, 'repository-passphrase', { passphrase: PASSPHRASE }),
    secretObject(namespace, 's3-credentials', s3Env),
    repositoryObject(namespace, 'primary', {
      provider: 's3',
      s3: { bucket: 'backups', endpoint: s3.endpoint, forcePathStyle: true },
      prefix: namespace,
      region: 'us-east-1',
      credentialsSecret: { name: 's3-credentials' },
    }),
    ...(azurite
      ? [
          secretObject(namespace, 'azure-credentials', { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }),
          // Left empty: the BackupRepository controller initialises it.
          repositoryObject(namespace, 'replica', {
            provider: 'azureBlob',
            azureBlob: { container: 'replica' },
            prefix: namespace,
            region: 'westeurope',
            credentialsSecret: { name: 'azure-credentials' },
          }),
        ]
      : []),
    ...(postgres
      ? [
          secretObject(namespace, 'pg-main', {
            host: postgres.host,
            port: String(postgres.port),
            username: postgres.user,
            password: postgres.password,
          }),
        ]
      : []),
  ]);
  const get = async <T>(plural: string, name: string, inNamespace = namespace): Promise<T | undefined> => {
    const api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    try {
      return (await api.getNamespacedCustomObject({
        group: 'tidemark.dev',
        version: 'v1alpha1',
        plural,
        namespace: inNamespace,
        name,
      })) as T;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };
  const operators: ManagedProcess[] = [];
  const forgetReport = reportOnFailure(`Tidemark environment in ${workDir}`, () =>
    describeEnvironment(cluster, kubelet, operators),
  );
  return {
    cluster,
    kubelet,
    s3,
    ...(azurite ? { azurite } : {}),
    ...(postgres ? { postgres } : {}),
    namespace,
    primaryUrl,
    s3Env,
    apply,
    async backups() {
      const api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
      const list = (await api.listNamespacedCustomObject({
        group: 'tidemark.dev',
        version: 'v1alpha1',
        plural: 'backups',
        namespace,
      })) as {
        items: Backup[];
      };
      return list.items;
    },
    get,
    async read<T>(plural: string, name: string, inNamespace = namespace): Promise<T> {
      const object = await get<T>(plural, name, inNamespace);
      if (!object) throw new Error(`${plural} ${inNamespace}/${name} does not exist`);
      return object;
    },
    startOperator(name, args = [], options = {}) {
      const operator = startProcess(
        name,
        tidemark[0] as string,
        [
          ...tidemark.slice(1),
          'operator',
          '--agent-image',
          AGENT_IMAGE,
          // Several operators share the host (and CI): any free ports unless the test names them.
          ...(args.includes('--metrics-port') ? [] : ['--metrics-port', '0']),
          ...(args.includes('--health-port') ? [] : ['--health-port', '0']),
          ...args,
        ],
        {
          logFile: join(workDir, `${name}.log`),
          env: {
            PATH: process.env.PATH ?? '',
            KUBECONFIG: cluster.kubeconfigPath,
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
            ...options.env,
          },
        },
      );
      operators.push(operator);
      return operator;
    },
    async stop() {
      forgetReport();
      for (const operator of operators) await operator.stop();
      await kubelet.stop();
      await Promise.all([cluster.stop(), s3.stop(), azurite?.stop(), postgres?.stop()]);
    },
  };
}

/** For a failed test's report: each operator's log digest, and the pods that have not succeeded with their logs' tails. */
async function describeEnvironment(
  cluster: Cluster,
  kubelet: ProcessKubelet,
  operators: ManagedProcess[],
): Promise<string[]> {
  const lines: string[] = [];
  for (const operator of operators) {
    const state = operator.child.exitCode ?? operator.child.signalCode;
    lines.push(`operator ${operator.name} (${state === null ? 'running' : `exited: ${state}`}):`);
    let log = '';
    try {
      log = readFileSync(operator.logFile, 'utf8');
    } catch {
      // not written yet
    }
    lines.push(...logDigest(log).map((l) => `  ${l}`));
  }
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const pods = (await core.listPodForAllNamespaces({ timeoutSeconds: 5 })).items;
  const unfinished = pods.filter((p) => p.status?.phase !== 'Succeeded');
  lines.push(`pods: ${pods.length - unfinished.length} succeeded${unfinished.length ? ', and:' : ''}`);
  for (const pod of unfinished) {
    const { namespace = '', name = '' } = pod.metadata ?? {};
    const states = (pod.status?.containerStatuses ?? []).map((c) => {
      const [state, detail] = Object.entries(c.state ?? {})[0] ?? ['unknown', {}];
      const { reason, exitCode } = detail as { reason?: string; exitCode?: number };
      return `${c.name} ${state}${reason ? ` ${reason}` : ''}${exitCode !== undefined ? ` ${exitCode}` : ''}`;
    });
    lines.push(
      `  ${namespace}/${name}: ${pod.status?.phase ?? 'no phase'} on ${pod.spec?.nodeName ?? 'no node'}; ${states.join(', ')}`,
    );
    for (const container of pod.spec?.containers ?? [])
      lines.push(...logDigest(kubelet.logs(namespace, name, container.name), 3, 2).map((l) => `    ${l}`));
  }
  return lines;
}

function repositoryObject(namespace: string, name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupRepository',
    metadata: { name, namespace },
    spec: { ...spec, encryptionKeySecret: { name: 'repository-passphrase' } },
  };
}

export function secretObject(namespace: string, name: string, stringData: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData };
}

/** A policy backing up one volume (a PVC the process kubelet maps to a directory) into the primary. */
export function volumePolicy(namespace: string, name: string, schedule: object, extra: object = {}) {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name, namespace },
    spec: {
      sources: [{ name: 'documents', volume: { claimName: 'documents' } }],
      schedule,
      repository: 'primary',
      ...extra,
    },
  };
}
