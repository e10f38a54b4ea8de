import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';

/** A container path mapped onto a local path: the documented stand-in for a real mount. */
export interface PathMapping {
  containerPath: string;
  localPath: string;
}

/** Reads Secrets, ConfigMaps and tokens that a pod references. */
export interface ObjectReader {
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  serviceAccountToken(namespace: string, serviceAccount: string, expirationSeconds?: number): Promise<string>;
}

export class PodSpecError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Materialises a pod's volumes under podDir (or volumeRoot for PVCs) and returns each volume's local directory. */
export async function prepareVolumes(
  pod: k8s.V1Pod,
  podDir: string,
  volumeRoot: string,
  reader: ObjectReader,
): Promise<Map<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const dirs = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) {
    let dir = join(podDir, 'volumes', volume.name);
    if (volume.persistentVolumeClaim) dir = join(volumeRoot, namespace, volume.persistentVolumeClaim.claimName);
    else if (volume.hostPath) dir = volume.hostPath.path;
    else if (volume.secret) {
      const data = await reader.secret(namespace, volume.secret.secretName ?? '');
      if (!data && !volume.secret.optional)
        throw new PodSpecError(
          'ContainerCreating',
          `MountVolume.SetUp failed for volume "${volume.name}": secret "${volume.secret.secretName}" not found`,
        );
      writeFiles(dir, data ?? {}, volume.secret.items);
    } else if (volume.configMap) {
      const data = await reader.configMap(namespace, volume.configMap.name ?? '');
      if (!data && !volume.configMap.optional)
        throw new PodSpecError(
          'ContainerCreating',
          `MountVolume.SetUp failed for volume "${volume.name}": configmap "${volume.configMap.name}" not found`,
        );
      writeFiles(dir, data ?? {}, volume.configMap.items);
    } else if (volume.projected) {
      writeFiles(dir, await projectedFiles(pod, volume.projected, reader), undefined);
    } else if (!volume.emptyDir) {
      throw new PodSpecError(
        'UnsupportedVolume',
        `volume "${volume.name}": only emptyDir, persistentVolumeClaim, hostPath, secret, configMap and projected volumes are supported by the process kubelet`,
      );
    }
    mkdirSync(dir, { recursive: true });
    dirs.set(volume.name, dir);
  }
  return dirs;
}

async function projectedFiles(pod: k8s.V1Pod, projected: k8s.V1ProjectedVolumeSource, reader: ObjectReader) {
  const namespace = pod.metadata?.namespace ?? 'default';
  const files: Record<string, string> = {};
  for (const source of projected.sources ?? []) {
    if (source.serviceAccountToken) {
      files[source.serviceAccountToken.path] = await reader.serviceAccountToken(
        namespace,
        pod.spec?.serviceAccountName ?? 'default',
        source.serviceAccountToken.expirationSeconds,
      );
    } else if (source.configMap) {
      const data = (await reader.configMap(namespace, source.configMap.name ?? '')) ?? {};
      Object.assign(files, selectItems(data, source.configMap.items));
    } else if (source.secret) {
      const data = (await reader.secret(namespace, source.secret.name ?? '')) ?? {};
      Object.assign(files, selectItems(data, source.secret.items));
    } else if (source.downwardAPI) {
      for (const item of source.downwardAPI.items ?? []) {
        if (item.fieldRef) files[item.path] = fieldValue(pod, item.fieldRef.fieldPath);
      }
    }
  }
  return files;
}

function selectItems(data: Record<string, string>, items: k8s.V1KeyToPath[] | undefined): Record<string, string> {
  if (!items) return data;
  return Object.fromEntries(items.filter((i) => i.key in data).map((i) => [i.path, data[i.key] ?? '']));
}

function writeFiles(dir: string, data: Record<string, string>, items: k8s.V1KeyToPath[] | undefined): void {
  mkdirSync(dir, { recursive: true });
  for (const [path, value] of Object.entries(selectItems(data, items))) {
    const file = join(dir, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, value, { mode: 0o600 });
  }
}

/** Resolves a container's environment the way the kubelet does: envFrom first, then env with $(VAR) expansion. */
export async function resolveEnv(
  pod: k8s.V1Pod,
  container: k8s.V1Container,
  reader: ObjectReader,
): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.secretRef ?? from.configMapRef;
    const data = from.secretRef
      ? await reader.secret(namespace, ref?.name ?? '')
      : await reader.configMap(namespace, ref?.name ?? '');
    if (!data && !ref?.optional)
      throw new PodSpecError(
        'CreateContainerConfigError',
        `${from.secretRef ? 'secret' : 'configmap'} "${ref?.name}" not found`,
      );
    for (const [key, value] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${key}`] = value;
  }
  for (const variable of container.env ?? []) {
    const source = variable.valueFrom;
    if (!source) env[variable.name] = expand(variable.value ?? '', env);
    else if (source.secretKeyRef || source.configMapKeyRef) {
      const ref = (source.secretKeyRef ?? source.configMapKeyRef) as k8s.V1SecretKeySelector;
      const kind = source.secretKeyRef ? 'secret' : 'configmap';
      const data = source.secretKeyRef
        ? await reader.secret(namespace, ref.name ?? '')
        : await reader.configMap(namespace, ref.name ?? '');
      const value = data?.[ref.key];
      if (value !== undefined) env[variable.name] = value;
      else if (!ref.optional)
        throw new PodSpecError(
          'CreateContainerConfigError',
          `env ${variable.name}: key "${ref.key}" of ${kind} "${ref.name}" not found`,
        );
    } else if (source.fieldRef) env[variable.name] = fieldValue(pod, source.fieldRef.fieldPath);
  }
  return env;
}

function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    match === '$$' ? '$' : name !== undefined && name in env ? (env[name] ?? '') : match,
  );
}

export function fieldValue(pod: k8s.V1Pod, path: string): string {
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (label) return (label[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[label[2] ?? ''] ?? '';
  const values: Record<string, string | undefined> = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': '127.0.0.1',
    'status.hostIP': '127.0.0.1',
  };
  return values[path] ?? '';
}

/** Replaces container paths with their local paths in a command-line argument or environment value (one pass). */
export function rewritePaths(value: string, mappings: PathMapping[]): string {
  if (mappings.length === 0) return value;
  const byPath = new Map(mappings.map((m) => [m.containerPath, m.localPath]));
  const alternatives = [...byPath.keys()]
    .sort((a, b) => b.length - a.length)
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(`(^|[=:,\\s]|file://)(${alternatives.join('|')})(?=/|$|[\\s,:])`, 'g');
  return value.replace(pattern, (_match, lead: string, path: string) => `${lead}${byPath.get(path) ?? path}`);
}
