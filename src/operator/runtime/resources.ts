import * as k8s from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../../api/common.ts';
import type { Resource } from '../../api/kinds.ts';
import { withoutManagedFields } from './cached.ts';

export type Plural =
  | 'backuprepositories'
  | 'backuppolicies'
  | 'backups'
  | 'restorerequests'
  | 'backupreports'
  | 'backupexports';

/** JSON with object keys sorted: the API server returns custom objects with their keys sorted. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** Objects per page of an informer's initial LIST. */
const LIST_PAGE = 500;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isRecord = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON merge patch (RFC 7386) that turns `from` into `to`: changed values, null for removed keys,
 * arrays whole. A field neither side has is left as the server has it: what a cache leaves out of an
 * object (runtime/cached.ts) survives a status written from the cached object.
 */
export function mergePatch(from: unknown, to: unknown): Json {
  const a = JSON.parse(JSON.stringify(from ?? null)) as Json;
  const b = JSON.parse(JSON.stringify(to ?? null)) as Json;
  if (!isRecord(a) || !isRecord(b)) return b;
  const patch: { [key: string]: Json } = {};
  for (const key of Object.keys(a)) if (!(key in b)) patch[key] = null;
  for (const [key, value] of Object.entries(b)) {
    if (!(key in a)) patch[key] = value;
    else if (canonicalJson(a[key]) !== canonicalJson(value))
      patch[key] = isRecord(a[key]) && isRecord(value) ? mergePatch(a[key], value) : value;
  }
  return patch;
}

const isNotFound = (error: unknown) => (error as { code?: number }).code === 404;
const isConflict = (error: unknown) => (error as { code?: number }).code === 409;

/**
 * Typed access to Tidemark's custom resources, and the one status writer: a status is written only
 * when it changed, and retried on conflict against a fresh read (STYLE 3).
 */
export class Resources {
  readonly api: k8s.CustomObjectsApi;
  /** How each kind's informer keeps its objects; a status is written from an object shaped the same. */
  private readonly keepers = new Map<Plural, (object: never) => unknown>();

  constructor(readonly kc: k8s.KubeConfig) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /**
   * A cache of every object of `plural`, or of those `labelSelector` selects, each as `keep` leaves it
   * (by default without managedFields). The initial LIST is read in pages: one response holding every
   * Backup of a long history would be hundreds of MiB, past what one JavaScript string can hold.
   */
  informer<R extends Resource<unknown, unknown>>(
    plural: Plural,
    labelSelector?: string,
    keep: (object: R) => R = withoutManagedFields as never,
  ): k8s.Informer<R & k8s.KubernetesObject> & k8s.ObjectCache<R & k8s.KubernetesObject> {
    this.keepers.set(plural, keep as (object: never) => unknown);
    const watch = new k8s.Watch(this.kc);
    const keeping: Pick<k8s.Watch, 'watch'> = {
      watch: (path, query, callback, done) =>
        watch.watch(
          path,
          query,
          (phase, object, raw) =>
            callback(phase, phase === 'ERROR' || phase === 'BOOKMARK' ? object : keep(object), raw),
          done,
        ),
    };
    const list = async () => {
      const items: R[] = [];
      let resourceVersion = '';
      let next: string | undefined;
      do {
        const page = (await this.api.listClusterCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural,
          limit: LIST_PAGE,
          ...(next ? { _continue: next } : {}),
          ...(labelSelector ? { labelSelector } : {}),
        })) as { items: R[]; metadata?: { resourceVersion?: string; continue?: string } };
        for (const item of page.items) items.push(keep(item));
        resourceVersion ||= page.metadata?.resourceVersion ?? '';
        next = page.metadata?.continue || undefined;
      } while (next);
      return { items, metadata: { resourceVersion } };
    };
    return new k8s.ListWatch(
      `/apis/${API_GROUP}/${API_VERSION}/${plural}`,
      keeping as k8s.Watch,
      list as never,
      false,
      labelSelector,
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
      if (!next || canonicalJson(next) === canonicalJson(current.metadata)) return;
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

  /**
   * Makes `object`'s status `status`. The object as the informer last saw it is tried first, so an
   * unchanged status costs no request; on a conflict (the cache was behind) a fresh read is used,
   * shaped as its cache keeps it. The change is sent as a merge patch of the status against that
   * object's, guarded by its resourceVersion: fields the cache leaves out are kept.
   * A function computes the status from the object it is written to, each attempt: for a status
   * two controllers write parts of (the policy controller its sources, the drill controller their
   * lastDrill, the audit controller their lastAudit), so neither writes back the other's part as it
   * was. True when this call changed the status.
   */
  async writeStatus<R extends Resource<unknown, unknown>>(
    plural: Plural,
    object: R,
    statusOf: NonNullable<R['status']> | ((current: R) => NonNullable<R['status']>),
  ): Promise<boolean> {
    const { namespace = '', name = '' } = object.metadata;
    const keep = (this.keepers.get(plural) ?? withoutManagedFields) as (object: R) => R;
    let current: R | undefined = object;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      const status =
        typeof statusOf === 'function' ? (statusOf as (current: R) => NonNullable<R['status']>)(current) : statusOf;
      if (canonicalJson(status) === canonicalJson(current.status ?? {})) return false;
      const { resourceVersion } = current.metadata as { resourceVersion?: string };
      try {
        await this.api.patchNamespacedCustomObjectStatus(
          {
            group: API_GROUP,
            version: API_VERSION,
            plural,
            namespace,
            name,
            body: {
              ...(resourceVersion ? { metadata: { resourceVersion } } : {}),
              status: mergePatch(current.status ?? {}, status),
            },
          },
          MERGE_PATCH,
        );
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        if (!isConflict(error)) throw error;
      }
      const fresh: R | undefined = await this.get<R>(plural, namespace, name);
      current = fresh && keep(fresh);
    }
    if (current) throw new Error(`status of ${plural} ${namespace}/${name}: conflicts on every attempt`);
    return false;
  }
}
