import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess, waitUntil } from './process.ts';
import { goTool, repoRoot } from './tools.ts';

/** A real control plane: etcd, kube-apiserver and kube-controller-manager on loopback ports. */
export interface Cluster {
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly kubeConfig: k8s.KubeConfig;
  readonly workDir: string;
  /** etcd's client URL (http, no auth): for a benchmark that seeds objects as the API server stores them. */
  readonly etcd: string;
  /**
   * Stops kube-apiserver and starts it again on the same port, certificates and etcd: its watch cache then
   * starts from a LIST of etcd (for objects written straight into etcd, which it would otherwise replay
   * one watch event at a time).
   */
  restartApiServer(): Promise<void>;
  /** Runs the built kubectl against this cluster; resolves with stdout, rejects with stderr. */
  kubectl(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Install crds/ (default true). */
  installCrds?: boolean;
}

export async function startCluster(workDir: string, options: ClusterOptions = {}): Promise<Cluster> {
  mkdirSync(workDir, { recursive: true });
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of processes.reverse()) await p.stop();
  };
  try {
    const etcdClient = await startEtcd(workDir, processes);
    const { server, token, caFile, restart } = await startApiServer(workDir, etcdClient, processes);
    const kubeconfigPath = join(workDir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, token, caFile), { mode: 0o600 });
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    await startControllerManager(workDir, kubeconfigPath, caFile, processes);
    const cluster: Cluster = {
      server,
      kubeconfigPath,
      kubeConfig,
      workDir,
      etcd: etcdClient,
      restartApiServer: restart,
      kubectl: (args, input) => runKubectl(kubeconfigPath, args, input),
      stop,
    };
    if (options.installCrds !== false) await installCrds(cluster);
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startEtcd(workDir: string, processes: ManagedProcess[]): Promise<string> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const etcd = startProcess(
    'etcd',
    goTool('etcd'),
    [
      `--data-dir=${join(workDir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    { logFile: join(workDir, 'etcd.log') },
  );
  processes.push(etcd);
  await waitUntil('etcd', async () => (await fetch(`${client}/health`)).ok, {
    timeoutMs: 20_000,
    process: etcd,
  });
  return client;
}

async function startApiServer(workDir: string, etcd: string, processes: ManagedProcess[]) {
  const port = await freePort();
  const certDir = join(workDir, 'pki');
  mkdirSync(certDir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = join(certDir, 'sa.key');
  const saPub = join(certDir, 'sa.pub');
  writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(certDir, 'tokens.csv');
  writeFileSync(tokenFile, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
  const args = [
    `--etcd-servers=${etcd}`,
    `--secure-port=${port}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--cert-dir=${certDir}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    `--token-auth-file=${tokenFile}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    '--allow-privileged=false',
    '--endpoint-reconciler-type=none',
    '--v=1',
  ];
  const server = `https://127.0.0.1:${port}`;
  const caFile = join(certDir, 'apiserver.crt');
  let apiserver: ManagedProcess | undefined;
  const start = async (logName: string) => {
    apiserver = startProcess('kube-apiserver', goTool('kube-apiserver'), args, { logFile: join(workDir, logName) });
    processes.push(apiserver);
    await waitUntil(
      'kube-apiserver',
      async () => {
        const response = await fetchInsecure(`${server}/readyz`, token);
        return response === 200;
      },
      { timeoutMs: 180_000, process: apiserver, intervalMs: 250 },
    );
  };
  await start('kube-apiserver.log');
  let restarts = 0;
  const restart = async () => {
    await apiserver?.stop();
    await start(`kube-apiserver-${++restarts}.log`);
  };
  return { server, token, caFile, restart };
}

/** Readiness probe before the kubeconfig exists; the serving cert is self-signed by the apiserver. */
async function fetchInsecure(url: string, token: string): Promise<number> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    request.on('error', reject);
  });
}

async function startControllerManager(
  workDir: string,
  kubeconfig: string,
  caFile: string,
  processes: ManagedProcess[],
): Promise<void> {
  const manager = startProcess(
    'kube-controller-manager',
    goTool('kube-controller-manager'),
    [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      `--service-account-private-key-file=${join(workDir, 'pki', 'sa.key')}`,
      `--root-ca-file=${caFile}`,
      '--leader-elect=false',
      '--controllers=job,garbagecollector,namespace,serviceaccount,serviceaccount-token,root-ca-certificate-publisher-controller,ttl-after-finished,podgc,persistentvolumeclaim-protection-controller',
      '--secure-port=0',
      '--concurrent-job-syncs=10',
      '--v=1',
    ],
    { logFile: join(workDir, 'kube-controller-manager.log') },
  );
  processes.push(manager);
  // Ready once the serviceaccount controller has created the default ServiceAccount that Job pods need.
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await waitUntil(
    'kube-controller-manager',
    async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
      return true;
    },
    { timeoutMs: 60_000, process: manager, intervalMs: 250 },
  );
}

function kubeconfigYaml(server: string, token: string, caFile: string): string {
  const ca = readFileSync(caFile).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: tidemark-test
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: tidemark-test
  context: { cluster: tidemark-test, user: admin, namespace: default }
current-context: tidemark-test
`;
}

async function runKubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(goTool('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`kubectl ${args.join(' ')} failed (${code}): ${stderr.trim()}`)),
    );
    // kubectl may exit (closing the pipe) before reading its input, or without reading any (a get):
    // its exit code and stderr, reported on close, say how it ended; an EPIPE would only hide that.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/**
 * Applies crds/ with kubectl and waits until each CRD is Established. Not through the typed client:
 * its serializer drops the x-kubernetes-* schema extensions (CEL rules, list types).
 */
export async function installCrds(cluster: Pick<Cluster, 'kubectl'>): Promise<void> {
  await cluster.kubectl(['apply', '--server-side', '-k', join(repoRoot, 'crds')]);
  await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd',
    '-l',
    'app.kubernetes.io/part-of=tidemark',
  ]);
}
