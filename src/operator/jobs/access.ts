import type * as k8s from '@kubernetes/client-node';
import { SOURCE_ENV, TARGET_ENV } from '../../agent/tasks/env.ts';
import type { Source } from '../../api/backuppolicy.ts';
import type { DatabaseTls } from '../../api/common.ts';
import { CONNECTION_ENV } from '../../sources/connection.ts';
import { LIVE_SOURCE_ENV } from '../../sources/live-source.ts';

/** Where volume sources are mounted in the agent container (read-only). */
export const DATA_MOUNT = '/data';

/** Where the agent finds the database TLS files it is given (read-only Secret volumes). */
export const TLS_MOUNT = '/etc/tidemark/db-tls';

/** A database server's address and user, from its connection Secret, for the URLs below to name as $(VAR). */
const SERVER_ENV = { host: 'TIDEMARK_DB_HOST', port: 'TIDEMARK_DB_PORT', user: 'TIDEMARK_DB_USER' } as const;
const serverUrl = (scheme: string, path: string) =>
  `${scheme}://$(${SERVER_ENV.user})@$(${SERVER_ENV.host}):$(${SERVER_ENV.port})/${path}`;

/**
 * What the agent needs to connect to a database server, from its connection Secret (host, port,
 * username, and password when the Secret has one: a server that authenticates by certificate needs
 * none) and its TLS Secrets, mounted as files: the operator never reads a Secret.
 */
export function databaseAccess(
  engine: 'postgres' | 'mysql',
  connectionSecret: string,
  tls: DatabaseTls | undefined,
): { env: k8s.V1EnvVar[]; volumes: k8s.V1Volume[]; volumeMounts: k8s.V1VolumeMount[] } {
  const fromSecret = (name: string, key: string, optional = false): k8s.V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: connectionSecret, key, ...(optional ? { optional } : {}) } },
  });
  const env = [
    fromSecret(SERVER_ENV.host, 'host'),
    fromSecret(SERVER_ENV.port, 'port'),
    fromSecret(SERVER_ENV.user, 'username'),
    fromSecret(engine === 'postgres' ? 'PGPASSWORD' : 'MYSQL_PWD', 'password', true),
    ...(tls?.mode ? [{ name: CONNECTION_ENV.tlsMode, value: tls.mode }] : []),
  ];
  const volumes: k8s.V1Volume[] = [];
  const volumeMounts: k8s.V1VolumeMount[] = [];
  const mount = (name: string, secretName: string, items: k8s.V1KeyToPath[]) => {
    volumes.push({ name, secret: { secretName, items, defaultMode: 0o440 } });
    volumeMounts.push({ name, mountPath: `${TLS_MOUNT}/${name}`, readOnly: true });
  };
  if (tls?.caSecret) {
    mount('db-tls-ca', tls.caSecret.name, [{ key: tls.caSecret.key ?? 'ca.crt', path: 'ca.crt' }]);
    env.push({ name: CONNECTION_ENV.tlsCa, value: `${TLS_MOUNT}/db-tls-ca/ca.crt` });
  }
  if (tls?.clientCertificateSecret) {
    mount('db-tls-client', tls.clientCertificateSecret.name, [
      { key: 'tls.crt', path: 'tls.crt' },
      { key: 'tls.key', path: 'tls.key' },
    ]);
    env.push(
      { name: CONNECTION_ENV.tlsCert, value: `${TLS_MOUNT}/db-tls-client/tls.crt` },
      { name: CONNECTION_ENV.tlsKey, value: `${TLS_MOUNT}/db-tls-client/tls.key` },
    );
  }
  return { env, volumes, volumeMounts };
}

/**
 * What the agent needs to reach one source: its URL (password-free) and credentials from the
 * connection Secret; for a database also the policy's timestamp columns
 * (`verification.audit.timestampColumns`), so backups record the newest values audits compare.
 */
export function sourceAccess(
  source: Source,
  claims: string[],
  /** Claims read from a PVC restored from a VolumeSnapshot: claim → that PVC (mounted where the claim would be). */
  readFrom?: Map<string, string>,
  timestampColumns?: Record<string, string>,
): Pick<k8s.V1Container, 'env'> & { volumes: k8s.V1Volume[]; volumeMounts: k8s.V1VolumeMount[] } {
  const database = source.postgres ?? source.mysql;
  if (database) {
    const access = databaseAccess(source.postgres ? 'postgres' : 'mysql', database.connectionSecret.name, database.tls);
    const scheme = source.postgres ? 'postgresql' : 'mysql';
    const databases = database.allDatabases ? '' : (database.databases ?? []).map(encodeURIComponent).join(',');
    return {
      env: [
        ...access.env,
        { name: SOURCE_ENV.url, value: serverUrl(scheme, databases) },
        ...(database.allDatabases ? [{ name: SOURCE_ENV.allDatabases, value: 'true' }] : []),
        ...(database.lockWaitTimeout
          ? [{ name: CONNECTION_ENV.lockWaitTimeout, value: database.lockWaitTimeout }]
          : []),
        ...(timestampColumns && Object.keys(timestampColumns).length
          ? [{ name: SOURCE_ENV.timestampColumns, value: JSON.stringify(timestampColumns) }]
          : []),
      ],
      volumes: access.volumes,
      volumeMounts: access.volumeMounts,
    };
  }
  const single = claims.length === 1;
  return {
    env: [
      { name: SOURCE_ENV.url, value: `file://${DATA_MOUNT}` },
      ...(source.volume?.excludes?.length
        ? [{ name: SOURCE_ENV.excludes, value: JSON.stringify(source.volume.excludes) }]
        : []),
    ],
    volumes: claims.map((claim, i) => ({
      name: `source-${i}`,
      persistentVolumeClaim: { claimName: readFrom?.get(claim) ?? claim, readOnly: true },
    })),
    volumeMounts: claims.map((claim, i) => ({
      name: `source-${i}`,
      mountPath: single ? DATA_MOUNT : `${DATA_MOUNT}/${claim}`,
      readOnly: true,
    })),
  };
}

/** Where a restore writes: a database on a server (credentials from its connection Secret), or a PVC. */
export type RestoreTarget =
  | {
      kind: 'database';
      engine: 'postgres' | 'mysql';
      connectionSecret: string;
      database: string;
      tls?: DatabaseTls | undefined;
    }
  | { kind: 'volume'; claimName: string };

/** What the agent needs to write into the target: its URL (password-free) and credentials, or the PVC read-write. */
export function targetAccess(target: RestoreTarget): {
  env: k8s.V1EnvVar[];
  volumes: k8s.V1Volume[];
  volumeMounts: k8s.V1VolumeMount[];
} {
  if (target.kind === 'volume')
    return {
      env: [{ name: TARGET_ENV, value: `file://${DATA_MOUNT}` }],
      volumes: [{ name: 'target', persistentVolumeClaim: { claimName: target.claimName } }],
      volumeMounts: [{ name: 'target', mountPath: DATA_MOUNT }],
    };
  const access = databaseAccess(target.engine, target.connectionSecret, target.tls);
  const scheme = target.engine === 'postgres' ? 'postgresql' : 'mysql';
  return {
    env: [...access.env, { name: TARGET_ENV, value: serverUrl(scheme, encodeURIComponent(target.database)) }],
    volumes: access.volumes,
    volumeMounts: access.volumeMounts,
  };
}

/**
 * A policy source that may be the target under another Secret: the agent compares its host and port
 * (from `connectionSecret`) with the target's and refuses a match (LIVE_SOURCE_ENV).
 */
export interface LiveSourceCandidate {
  /** `source x of policy y`, for the refusal. */
  name: string;
  connectionSecret: string;
}

/**
 * The host and port of each candidate, read by the agent from the candidate's Secret (optional keys:
 * a Secret that is missing or incomplete cannot name the target's server and does not hold the pod).
 */
export function liveSourceEnv(candidates: LiveSourceCandidate[]): k8s.V1EnvVar[] {
  return candidates.flatMap((candidate, i) => {
    const fromSecret = (name: string, key: string): k8s.V1EnvVar => ({
      name,
      valueFrom: { secretKeyRef: { name: candidate.connectionSecret, key, optional: true } },
    });
    const prefix = `${LIVE_SOURCE_ENV}_${i}`;
    return [
      { name: `${prefix}_NAME`, value: `${candidate.name} (Secret ${candidate.connectionSecret})` },
      fromSecret(`${prefix}_HOST`, 'host'),
      fromSecret(`${prefix}_PORT`, 'port'),
    ];
  });
}

/** A database server as a whole (a drill server): its password-free URL without a database, and how to reach it. */
export function serverAccess(
  engine: 'postgres' | 'mysql',
  connectionSecret: string,
  tls: DatabaseTls | undefined,
): { url: string; env: k8s.V1EnvVar[]; volumes: k8s.V1Volume[]; volumeMounts: k8s.V1VolumeMount[] } {
  return {
    url: serverUrl(engine === 'postgres' ? 'postgresql' : 'mysql', ''),
    ...databaseAccess(engine, connectionSecret, tls),
  };
}
