import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { makeCertificates } from '../tls.ts';
import {
  type ObjectReader,
  type PathMapping,
  PodSpecError,
  prepareVolumes,
  resolveEnv,
  rewritePaths,
} from './environment.ts';

/**
 * The process kubelet: the one stand-in of the test harness. It registers a Node, binds pending pods to
 * it (there is no scheduler), runs each container's command as a local process and reports pod status,
 * so the real Job controller and garbage collector act on real pods. Limits: docs/testing.md.
 */
export interface ProcessKubelet {
  readonly nodeName: string;
  /** Local directory standing in for a PersistentVolumeClaim's volume. */
  claimDir(namespace: string, claimName: string): string;
  /** Combined stdout/stderr of a container, as `kubectl logs` would show. */
  logs(namespace: string, pod: string, container: string): string;
  stop(): Promise<void>;
}

export interface ProcessKubeletOptions {
  workDir: string;
  nodeName?: string;
  /** The command run for an image whose container sets none (there is no image to read an entrypoint from). */
  imageEntrypoints?: Record<string, string[]>;
  /** Extra environment for every process (e.g. PATH to the tools the image would contain). */
  baseEnv?: Record<string, string>;
}

interface RunningPod {
  processes: Set<ChildProcess>;
  stopping: boolean;
}

const MAX_TERMINATION_MESSAGE = 4096;
/** Waiting reasons the kubelet retries (an object the pod needs may appear later), at most this far apart. */
const WAITING_REASONS = new Set(['CreateContainerConfigError', 'ContainerCreating']);
const CONFIG_RETRY_MAX_MS = 5000;

export async function startProcessKubelet(kc: k8s.KubeConfig, options: ProcessKubeletOptions): Promise<ProcessKubelet> {
  const nodeName = options.nodeName ?? 'process-kubelet';
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const volumeRoot = join(options.workDir, 'volumes');
  const podsRoot = join(options.workDir, 'pods');
  mkdirSync(volumeRoot, { recursive: true });
  const running = new Map<string, RunningPod>();
  const server = new URL(kc.getCurrentCluster()?.server ?? 'https://127.0.0.1');

  const logs = (namespace: string, pod: string, container: string) => {
    const dir = join(podsRoot, namespace, pod);
    try {
      return readdirSync(dir)
        .map((uid) => readTail(join(dir, uid, `${container}.log`), Number.POSITIVE_INFINITY))
        .join('');
    } catch {
      return '';
    }
  };
  const logServer = await serveContainerLogs(join(options.workDir, 'tls'), logs);
  await registerNode(core, nodeName, (logServer.address() as { port: number }).port);
  const reader = objectReader(core);

  const informer = k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const handle = (pod: k8s.V1Pod) => {
    void sync(pod).catch((error: unknown) => {
      process.stderr.write(`[process-kubelet] ${key(pod)}: ${String(error)}\n`);
    });
  };
  informer.on('add', handle);
  informer.on('update', handle);
  let stopped = false;
  const isStopped = () => stopped;
  // An informer stops on a watch error; restart it (the API server may be restarting), until stop().
  informer.on('error', () => {
    if (!stopped) setTimeout(() => void (stopped ? undefined : informer.start().catch(() => undefined)), 1000).unref();
  });
  await informer.start();

  async function sync(pod: k8s.V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    if (stopped) return;
    if (!pod.spec?.nodeName) {
      if (pod.metadata?.deletionTimestamp) return;
      // The scheduler's part: a binding the API server refused for a moment is tried again, as the scheduler
      // does; a conflict means the pod is bound already.
      await untilAccepted(isStopped, () =>
        core
          .createNamespacedPodBinding({
            name,
            namespace,
            body: { metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
          })
          .catch((error: { code?: number }) => {
            if (error.code !== 409) throw error;
          }),
      );
      return;
    }
    if (pod.spec.nodeName !== nodeName) return;
    const entry = running.get(key(pod));
    if (pod.metadata?.deletionTimestamp) {
      if (entry && !entry.stopping) {
        entry.stopping = true;
        await terminate(entry, (pod.metadata.deletionGracePeriodSeconds ?? 30) * 1000);
      }
      if (!entry || entry.processes.size === 0) await forceDelete(core, name, namespace);
      return;
    }
    if (entry || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || pod.status?.startTime) return;
    const state: RunningPod = { processes: new Set(), stopping: false };
    running.set(key(pod), state);
    await runPod(pod, state);
  }

  async function runPod(pod: k8s.V1Pod, state: RunningPod): Promise<void> {
    const podDir = join(
      podsRoot,
      pod.metadata?.namespace ?? 'default',
      pod.metadata?.name ?? '',
      pod.metadata?.uid ?? '',
    );
    mkdirSync(podDir, { recursive: true });
    const startedAt = new Date();
    const statuses = new Map<string, k8s.V1ContainerStatus>();
    // Like the kubelet's status manager: one pod's updates go out in order, each the state when it was reported.
    let reported = Promise.resolve();
    const report = (phase: string, extra: Partial<k8s.V1PodStatus> = {}) => {
      const status = {
        phase,
        startTime: startedAt,
        containerStatuses: structuredClone([...statuses.values()]),
        ...extra,
      };
      reported = reported.then(() => writeStatus(core, pod, status, isStopped));
      return reported;
    };
    try {
      const config = await configure(pod, podDir, state, statuses, report);
      if (!config) return;
      const { volumes, envs } = config;
      await report('Pending');
      for (const container of pod.spec?.initContainers ?? []) {
        const code = await runContainer(pod, container, podDir, volumes, envs, state, statuses, report);
        if (code !== 0) return await report('Failed', { reason: 'InitContainerFailed' });
      }
      const codes = await Promise.all(
        (pod.spec?.containers ?? []).map((c) => runContainer(pod, c, podDir, volumes, envs, state, statuses, report)),
      );
      await report(codes.every((c) => c === 0) ? 'Succeeded' : 'Failed');
    } catch (error) {
      const reason = error instanceof PodSpecError ? error.reason : 'ProcessKubeletError';
      for (const c of pod.spec?.containers ?? [])
        statuses.set(c.name, waitingStatus(c, reason, (error as Error).message));
      await report('Failed', { reason, message: (error as Error).message }).catch(() => undefined);
    } finally {
      if (state.stopping && !stopped)
        await forceDelete(core, pod.metadata?.name ?? '', pod.metadata?.namespace ?? 'default');
    }
  }

  /**
   * The pod's volumes and every container's environment. A missing Secret, ConfigMap or key is what
   * a real kubelet keeps retrying: the pod stays Pending, its containers waiting (CreateContainerConfigError
   * for the environment, ContainerCreating for a volume, with the message naming the object and key),
   * and starts once the object appears. Undefined when the pod was deleted meanwhile.
   */
  async function configure(
    pod: k8s.V1Pod,
    podDir: string,
    state: RunningPod,
    statuses: Map<string, k8s.V1ContainerStatus>,
    report: (phase: string) => Promise<void>,
  ): Promise<{ volumes: Map<string, string>; envs: Map<string, Record<string, string>> } | undefined> {
    let reported = '';
    for (let attempt = 0; !state.stopping; attempt++) {
      try {
        const volumes = await prepareVolumes(pod, podDir, volumeRoot, reader);
        const envs = new Map<string, Record<string, string>>();
        for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])])
          envs.set(c.name, await resolveEnv(pod, c, reader));
        return { volumes, envs };
      } catch (error) {
        if (!(error instanceof PodSpecError) || !WAITING_REASONS.has(error.reason)) throw error;
        if (error.message !== reported) {
          for (const c of pod.spec?.containers ?? [])
            statuses.set(c.name, waitingStatus(c, error.reason, error.message));
          await report('Pending');
          reported = error.message;
        }
        await sleep(Math.min(CONFIG_RETRY_MAX_MS, 500 * 2 ** attempt));
      }
    }
    return undefined;
  }

  async function runContainer(
    pod: k8s.V1Pod,
    container: k8s.V1Container,
    podDir: string,
    volumes: Map<string, string>,
    envs: Map<string, Record<string, string>>,
    state: RunningPod,
    statuses: Map<string, k8s.V1ContainerStatus>,
    report: (phase: string) => Promise<void>,
  ): Promise<number> {
    const terminationLog = join(podDir, `${container.name}.termination-log`);
    const mappings: PathMapping[] = [
      ...(container.volumeMounts ?? []).map((m) => ({
        containerPath: m.mountPath,
        localPath: join(volumes.get(m.name) ?? podDir, m.subPath ?? ''),
      })),
      {
        containerPath: container.terminationMessagePath ?? '/dev/termination-log',
        localPath: terminationLog,
      },
    ];
    // The image entrypoint is a path on this machine, not in the container: it is never rewritten.
    const argv = [
      ...(container.command
        ? container.command.map((a) => rewritePaths(a, mappings))
        : (options.imageEntrypoints?.[container.image ?? ''] ?? [])),
      ...(container.args ?? []).map((a) => rewritePaths(a, mappings)),
    ];
    if (!container.command && !options.imageEntrypoints?.[container.image ?? ''])
      throw new PodSpecError(
        'NoCommand',
        `container ${container.name}: no command and no known entrypoint for image ${container.image}`,
      );
    const env = envs.get(container.name) ?? {};
    const processEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: podDir,
      HOSTNAME: pod.metadata?.name ?? '',
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port || '443',
      ...options.baseEnv,
    };
    for (const [name, value] of Object.entries(env)) processEnv[name] = rewritePaths(value, mappings);
    const logPath = join(podDir, `${container.name}.log`);
    let restartCount = 0;
    for (;;) {
      const started = new Date();
      statuses.set(container.name, {
        name: container.name,
        image: container.image ?? '',
        imageID: '',
        ready: true,
        started: true,
        restartCount,
        state: { running: { startedAt: started } },
      });
      const { code, error } = await runProcess(
        argv,
        processEnv,
        container.workingDir ? rewritePaths(container.workingDir, mappings) : podDir,
        logPath,
        state,
        async (pid) => {
          const status = statuses.get(container.name);
          if (status) status.containerID = `process://${pid}`;
          await report('Running');
        },
      );
      const message = terminationMessage(terminationLog, logPath, container, code, error);
      statuses.set(container.name, {
        name: container.name,
        image: container.image ?? '',
        imageID: '',
        ready: false,
        started: false,
        restartCount,
        state: {
          terminated: {
            exitCode: code,
            reason: error ? 'StartError' : code === 0 ? 'Completed' : 'Error',
            ...(message ? { message } : {}),
            startedAt: started,
            finishedAt: new Date(),
          },
        },
      });
      if (code === 0 || pod.spec?.restartPolicy !== 'OnFailure' || state.stopping) return code;
      restartCount += 1;
      await report('Running');
      await sleep(Math.min(10_000, 500 * 2 ** restartCount));
      if (state.stopping) return code;
    }
  }

  return {
    nodeName,
    claimDir: (namespace, claimName) => join(volumeRoot, namespace, claimName),
    logs,
    async stop() {
      stopped = true;
      logServer.close();
      await informer.stop();
      // A pod still being set up starts no process once its kubelet is gone (runProcess checks `stopping`).
      for (const pod of running.values()) pod.stopping = true;
      await Promise.all([...running.values()].map((p) => terminate(p, 2000)));
    },
  };
}

function runProcess(
  argv: string[],
  env: Record<string, string>,
  cwd: string,
  logPath: string,
  state: RunningPod,
  onStart: (pid: number) => Promise<void>,
): Promise<{ code: number; error?: string }> {
  if (state.stopping) return Promise.resolve({ code: 143 });
  return new Promise((resolve) => {
    const [command, ...args] = argv;
    const log = createWriteStream(logPath, { flags: 'a' });
    const child = spawn(command ?? '', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    state.processes.add(child);
    let failed: string | undefined;
    child.once('spawn', () => void onStart(child.pid ?? 0).catch(() => undefined));
    child.once('error', (error) => {
      failed = `failed to start ${command}: ${error.message}`;
    });
    child.once('close', (code, signal) => {
      state.processes.delete(child);
      log.end();
      if (failed) resolve({ code: 128, error: failed });
      else resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 143) });
    });
  });
}

async function terminate(pod: RunningPod, graceMs: number): Promise<void> {
  const kill = (signal: NodeJS.Signals) => {
    for (const child of pod.processes) {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already exited
      }
    }
  };
  kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pod.processes.size > 0 && Date.now() < deadline) await sleep(50);
  kill('SIGKILL');
  while (pod.processes.size > 0) await sleep(20);
}

function terminationMessage(
  file: string,
  logPath: string,
  container: k8s.V1Container,
  code: number,
  error: string | undefined,
): string {
  if (error) return error;
  const fromFile = readTail(file, MAX_TERMINATION_MESSAGE);
  if (fromFile || code === 0 || container.terminationMessagePolicy !== 'FallbackToLogsOnError') return fromFile;
  return readTail(logPath, 2048).split('\n').slice(-80).join('\n');
}

function readTail(path: string, max: number): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.length > max ? text.slice(-max) : text;
  } catch {
    return '';
  }
}

function waitingStatus(container: k8s.V1Container, reason: string, message: string): k8s.V1ContainerStatus {
  return {
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    ready: false,
    restartCount: 0,
    state: { waiting: { reason, message } },
  };
}

const key = (pod: k8s.V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}/${pod.metadata?.uid}`;

/**
 * The kubelet API's `GET /containerLogs/<namespace>/<pod>/<container>`, which the API server proxies
 * `pods/log` to (`kubectl logs`): the whole log, whatever the query asks (no follow, tail or timestamps).
 * The API server is given no kubelet CA, so a throw-away certificate serves; nobody else calls it.
 */
async function serveContainerLogs(
  tlsDir: string,
  logs: (namespace: string, pod: string, container: string) => string,
): Promise<Server> {
  const tls = await makeCertificates(tlsDir, 'kube-apiserver');
  const server = createServer({ key: readFileSync(tls.serverKey), cert: readFileSync(tls.serverCert) }, (req, res) => {
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/?]+)/.exec(req.url ?? '');
    if (req.method !== 'GET' || !match) {
      res.writeHead(404).end();
      return;
    }
    const [namespace, pod, container] = match.slice(1).map(decodeURIComponent) as [string, string, string];
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(logs(namespace, pod, container));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function registerNode(core: k8s.CoreV1Api, name: string, kubeletPort: number): Promise<void> {
  const status: k8s.V1NodeStatus = {
    capacity: { cpu: '2', memory: '24Gi', pods: '110' },
    allocatable: { cpu: '2', memory: '24Gi', pods: '110' },
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'ProcessKubeletReady',
        message: 'process kubelet of the Tidemark test harness',
        lastHeartbeatTime: new Date(),
        lastTransitionTime: new Date(),
      },
    ],
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    nodeInfo: {
      architecture: process.arch,
      bootID: '',
      containerRuntimeVersion: 'process://',
      kernelVersion: '',
      kubeProxyVersion: '',
      kubeletVersion: 'process-kubelet',
      machineID: '',
      operatingSystem: 'linux',
      osImage: 'local processes',
      systemUUID: '',
    },
  };
  const node = await core.createNode({
    body: {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' } },
      status,
    },
  });
  await core.replaceNodeStatus({ name, body: { ...node, status } });
}

/**
 * Writes the pod's status as the kubelet's status manager does: again after a conflict (re-reading the pod)
 * or a refusal of the moment (timeout, 5xx, a dropped connection), until it is accepted, the pod is gone or
 * already ended, or the kubelet stops. Giving up would leave a finished pod Running and its Job open forever.
 */
async function writeStatus(
  core: k8s.CoreV1Api,
  pod: k8s.V1Pod,
  status: Partial<k8s.V1PodStatus>,
  isStopped: () => boolean,
): Promise<void> {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? 'default';
  const terminal = status.phase === 'Succeeded' || status.phase === 'Failed';
  const ready = status.phase === 'Running' ? 'True' : 'False';
  const now = new Date();
  await untilAccepted(isStopped, async () => {
    const current = await core.readNamespacedPod({ name, namespace });
    if (current.status?.phase === 'Succeeded' || current.status?.phase === 'Failed') return;
    current.status = {
      ...current.status,
      ...status,
      hostIP: '127.0.0.1',
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'ContainersReady', status: terminal ? 'False' : ready, lastTransitionTime: now },
        { type: 'Ready', status: terminal ? 'False' : ready, lastTransitionTime: now },
      ],
    };
    await core.replaceNamespacedPodStatus({ name, namespace, body: current });
  });
}

/**
 * Calls `call` until it succeeds or its object is gone (404): at once after a conflict (the next attempt reads
 * afresh), after a back-off of up to 5 s on any other error. Ends quietly once `isStopped`.
 */
async function untilAccepted(isStopped: () => boolean, call: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; !isStopped(); attempt++) {
    try {
      await call();
      return;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === 404) return;
      // Unreferenced: a retry never holds a test process open after its last test.
      if (code !== 409) await sleep(Math.min(5000, 100 * 2 ** attempt), undefined, { ref: false });
    }
  }
}

async function forceDelete(core: k8s.CoreV1Api, name: string, namespace: string): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
  } catch (error) {
    if ((error as { code?: number }).code !== 404) throw error;
  }
}

function objectReader(core: k8s.CoreV1Api): ObjectReader {
  const notFoundAsUndefined = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };
  return {
    async secret(namespace, name) {
      const secret = await notFoundAsUndefined(() => core.readNamespacedSecret({ name, namespace }));
      if (!secret) return undefined;
      const data: Record<string, string> = { ...secret.stringData };
      for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
      return data;
    },
    async configMap(namespace, name) {
      const map = await notFoundAsUndefined(() => core.readNamespacedConfigMap({ name, namespace }));
      return map ? { ...map.data } : undefined;
    },
    async serviceAccountToken(namespace, serviceAccount, expirationSeconds) {
      const request = await core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { spec: { audiences: [], expirationSeconds: expirationSeconds ?? 3600 } },
      });
      return request.status?.token ?? '';
    },
  };
}
