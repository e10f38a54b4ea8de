import * as k8s from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../../api/common.ts';
import type { Resource } from '../../api/kinds.ts';

export type Plural = 'backuprepositories' | 'backuppolicies' | 'backups' | 'restorerequests';

const isNotFound = (error: unknown) => (error as { code?: number }).code === 404;
const isConflict = (error: unknown) => (error as { code?: number }).code === 409;

/**
 * Typed access to Tidemark's custom resources, and the one status writer: status changes are
 * applied to a fresh read, skipped when nothing changed, and retried on conflict (STYLE 3).
 */
export class Resources {
  readonly api: k8s.CustomObjectsApi;

  constructor(readonly kc: k8s.KubeConfig) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  informer<R extends Resource<unknown, unknown>>(
    plural: Plural,
  ): k8s.Informer<R & k8s.KubernetesObject> & k8s.ObjectCache<R & k8s.KubernetesObject> {
    return k8s.makeInformer(
      this.kc,
      `/apis/${API_GROUP}/${API_VERSION}/${plural}`,
      () => this.api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural }) as never,
    );
  }

  async get<R>(plural: Plural, namespace: string, name: string): Promise<R | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural,
        namespace,
        name,
      })) as R;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list<R>(plural: Plural, namespace: string, labelSelector?: string): Promise<R[]> {
    const list = (await this.api.listNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural,
      namespace,
      ...(labelSelector ? { labelSelector } : {}),
    })) as { items: R[] };
    return list.items;
  }

  /** Creates an object; when one of that name exists, returns it instead (deterministic names adopt). */
  async createOrGet<R extends Resource<unknown, unknown>>(
    plural: Plural,
    object: R,
  ): Promise<{ object: R; created: boolean }> {
    const namespace = object.metadata.namespace ?? '';
    try {
      const created = (await this.api.createNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural,
        namespace,
        body: object,
      })) as R;
      return { object: created, created: true };
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
      const existing = await this.get<R>(plural, namespace, object.metadata.name ?? '');
      if (!existing) throw error;
      return { object: existing, created: false };
    }
  }

  async delete(plural: Plural, namespace: string, name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural, namespace, name });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** Replaces metadata (finalizers) on a fresh read, retrying on conflict. */
  async updateMetadata<R extends Resource<unknown, unknown>>(
    plural: Plural,
    namespace: string,
    name: string,
    mutate: (metadata: R['metadata']) => R['metadata'] | undefined,
  ): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.get<R>(plural, namespace, name);
      if (!current) return;
      const next = mutate(structuredClone(current.metadata));
      if (!next || JSON.stringify(next) === JSON.stringify(current.metadata)) return;
      try {
        await this.api.replaceNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural,
          namespace,
          name,
          body: { ...current, metadata: next },
        });
        return;
      } catch (error) {
        if (isNotFound(error)) return;
        if (!isConflict(error)) throw error;
      }
    }
  }

  /** Applies `mutate` to the status of a fresh read; no write when nothing changed; retried on conflict. */
  async patchStatus<R extends Resource<unknown, unknown>>(
    plural: Plural,
    namespace: string,
    name: string,
    mutate: (status: NonNullable<R['status']>, object: R) => NonNullable<R['status']>,
  ): Promise<R | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.get<R>(plural, namespace, name);
      if (!current) return undefined;
      const before = (current.status ?? {}) as NonNullable<R['status']>;
      const next = mutate(structuredClone(before), current);
      if (JSON.stringify(next) === JSON.stringify(before)) return current;
      try {
        return (await this.api.replaceNamespacedCustomObjectStatus({
          group: API_GROUP,
          version: API_VERSION,
          plural,
          namespace,
          name,
          body: { ...current, status: next },
        })) as R;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        if (!isConflict(error)) throw error;
      }
    }
    throw new Error(`status of ${plural} ${namespace}/${name}: conflicts on every attempt`);
  }
}
