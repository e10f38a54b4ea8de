import { array, enumOf, integer, object, optional, string, type TypeOf } from './schema.ts';

export const API_GROUP = 'tidemark.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** Durations in manifests: one or more `<number><unit>` with units w, d, h, m, s (e.g. `90s`, `1h30m`, `14d`). */
export const DURATION_PATTERN = '^([0-9]+(w|d|h|m|s))+$';

export const duration = (description: string) =>
  string({
    description: `${description} A duration such as 90s, 15m, 1h30m, 14d or 2w.`,
    maxLength: 32,
    rules: [
      {
        rule: `self.matches(r'${DURATION_PATTERN}')`,
        message: 'must be a duration such as 90s, 15m, 1h30m, 14d or 2w (units: w, d, h, m, s)',
      },
      { rule: `!self.matches('^(0+(w|d|h|m|s))+$')`, message: 'must be longer than zero' },
    ],
  });

/** A Kubernetes object name (DNS-1123 subdomain). */
export const objectName = (description: string, maxLength = 253) =>
  string({
    description,
    minLength: 1,
    maxLength,
    rules: [
      {
        rule: String.raw`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')`,
        message: 'must be a lowercase RFC 1123 name: a-z, 0-9, "-" and ".", starting and ending with a letter or digit',
      },
    ],
  });

/** A DNS-1123 label; used where the name becomes part of generated object names. */
export const labelName = (description: string, maxLength = 63) =>
  string({
    description,
    minLength: 1,
    maxLength,
    rules: [
      {
        rule: `self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
        message: 'must be a lowercase RFC 1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit',
      },
    ],
  });

export const secretKeyRef = (description: string, defaultKey?: string) =>
  object(
    {
      name: objectName('Name of a Secret in the same namespace.'),
      ...(defaultKey
        ? {
            key: optional(string({ description: 'Key within the Secret.', default: defaultKey, maxLength: 253 })),
          }
        : {}),
    },
    { description },
  );

export const secretRef = (description: string) =>
  object({ name: objectName('Name of a Secret in the same namespace.') }, { description });

/** A Kubernetes-style condition (metav1.Condition). */
export const condition = object({
  type: string({ description: 'Condition type, e.g. Ready.', maxLength: 316 }),
  status: enumOf(['True', 'False', 'Unknown'] as const),
  reason: string({ description: 'CamelCase reason.', maxLength: 1024 }),
  message: optional(string({ maxLength: 32768 })),
  observedGeneration: optional(integer({ minimum: 0 })),
  lastTransitionTime: string({ format: 'date-time' }),
});
export type Condition = TypeOf<typeof condition>;

export const conditions = array(condition, {
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  maxItems: 32,
});

export const timestamp = (description: string) => string({ description, format: 'date-time' });

/** Progress of a long operation, shown by `kubectl describe` and the CLI. */
export const progress = object(
  {
    bytesDone: optional(integer({ minimum: 0 })),
    bytesTotal: optional(integer({ minimum: 0 })),
    objectsDone: optional(integer({ minimum: 0 })),
    bytesPerSecond: optional(integer({ minimum: 0 })),
    etaSeconds: optional(integer({ minimum: 0 })),
    updateTime: optional(timestamp('When the progress was last reported.')),
  },
  { description: 'Progress of the running operation.' },
);

/** Record counts per backed-up object: tables for databases, files for volumes. */
export const objectCounts = (description: string) =>
  array(
    object({
      name: string({ description: 'Object name, e.g. schema.table or a directory.', maxLength: 1024 }),
      records: integer({ minimum: 0, description: 'Rows for tables, files for volumes.' }),
    }),
    { description, 'x-kubernetes-list-type': 'atomic' },
  );

/** PostgreSQL's sslmode values; the agent maps them for MySQL/MariaDB clients (docs/sources.md). */
export const TLS_MODE_VALUES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** How the agent secures a database connection: files from Secrets, mounted into its pod (never read by the operator). */
export const databaseTls = object(
  {
    mode: optional(
      enumOf(TLS_MODE_VALUES, {
        description:
          "PostgreSQL's sslmode (disable, allow, prefer, require, verify-ca, verify-full), used for both engines. Absent: the client's default (prefer).",
      }),
    ),
    caSecret: optional(
      secretKeyRef('Secret holding the PEM certificate of the CA that signed the server certificate.', 'ca.crt'),
    ),
    clientCertificateSecret: optional(
      secretRef(
        'Secret of type kubernetes.io/tls (keys tls.crt and tls.key): the client certificate, for servers that authenticate by certificate. Then the connection Secret may leave out password.',
      ),
    ),
  },
  {
    description: 'TLS of the database connection.',
    rules: [
      {
        rule: "!has(self.mode) || !(self.mode in ['verify-ca', 'verify-full']) || has(self.caSecret)",
        message: 'verify-ca and verify-full need caSecret',
        fieldPath: '.caSecret',
        reason: 'FieldValueRequired',
      },
    ],
  },
);
export type DatabaseTls = TypeOf<typeof databaseTls>;
