import * as k8s from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../../api/common.ts';
import { TidemarkError } from '../../errors.ts';

/** The flags kubectl passes through to a plugin untouched: the plugin must honour them itself. */
export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

/** Tidemark's kinds as the API knows them, and the names people type for them. */
export const PLURALS = {
  BackupPolicy: 'backuppolicies',
  Backup: 'backups',
  RestoreRequest: 'restorerequests',
  BackupReport: 'backupreports',
  BackupExport: 'backupexports',
} as const;
export type PluginKind = keyof typeof PLURALS;

/**
 * The cluster as kubectl would reach it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config (or the
 * in-cluster account); --context, else the current one; -n, else the context's namespace, else default.
 */
export class Connection {
  readonly kc = new k8s.KubeConfig();
  readonly namespace: string;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(flags: ConnectionFlags) {
    if (flags.kubeconfig) this.kc.loadFromFile(flags.kubeconfig);
    else this.kc.loadFromDefault();
    if (flags.context) {
      if (!this.kc.getContextObject(flags.context))
        throw new TidemarkError('NotFound', `context ${flags.context} is not in the kubeconfig`);
      this.kc.setCurrentContext(flags.context);
    }
    this.namespace = flags.namespace ?? this.kc.getContextObject(this.kc.getCurrentContext())?.namespace ?? 'default';
    this.custom = this.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /** One object; a TidemarkError NotFound naming it when it does not exist. */
  async get<T>(kind: PluginKind, name: string): Promise<T> {
    return (await this.call(`${kind} ${this.namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({ ...this.where(kind), name }),
    )) as T;
  }

  /** Every object of a kind in the namespace, or in all namespaces. */
  async list<T>(kind: PluginKind, allNamespaces = false): Promise<T[]> {
    const list = (await this.call(`listing ${PLURALS[kind]}`, () =>
      allNamespaces
        ? this.custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: PLURALS[kind] })
        : this.custom.listNamespacedCustomObject(this.where(kind)),
    )) as { items: T[] };
    return list.items;
  }

  async create<T>(kind: PluginKind, body: object): Promise<T> {
    return (await this.call(`creating a ${kind} in ${this.namespace}`, () =>
      this.custom.createNamespacedCustomObject({ ...this.where(kind), body }),
    )) as T;
  }

  /** A JSON patch (RFC 6902): appends without overwriting what others added meanwhile. */
  async jsonPatch<T>(kind: PluginKind, name: string, operations: object[]): Promise<T> {
    return (await this.call(`updating ${kind} ${this.namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        { ...this.where(kind), name, body: operations },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      ),
    )) as T;
  }

  /** Who the API server says we are: what requestedBy and approvals must carry. */
  async whoAmI(): Promise<{ user: string; groups: string[] }> {
    const review = await this.call('asking the API server who you are (SelfSubjectReview)', () =>
      this.kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: {} }),
    );
    const user = review.status?.userInfo?.username;
    if (!user) throw new TidemarkError('AccessDenied', 'the API server did not say who you are (SelfSubjectReview)');
    return { user, groups: review.status?.userInfo?.groups ?? [] };
  }

  /** Runs one API call, turning its failure into one line naming what was being done. */
  async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const status = (error as { code?: number }).code;
      if (status === 404) throw new TidemarkError('NotFound', `${what}: not found`);
      const detail = apiMessage(error);
      if (status === 401 || status === 403) throw new TidemarkError('AccessDenied', `${what}: ${detail}`);
      if (status === 422 || status === 400) throw new TidemarkError('InvalidArgument', `${what}: ${detail}`);
      throw new TidemarkError('Transient', `${what}: ${detail}`, { cause: error });
    }
  }

  private where(kind: PluginKind) {
    return { group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: PLURALS[kind] };
  }
}

/** The API server's own message (a Status body), else the client's. */
function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      return body;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
