/**
 * The fields an SRE filters operator logs on (namespace, policy, source, backup, restoreRequest,
 * repository), for any object a log line is about: `jq 'select(.policy == "nightly")'` finds the
 * policy's own lines and those of its Backups and restores alike.
 */
export interface LoggedObject {
  kind: string;
  metadata: { name?: string; namespace?: string };
  spec?: unknown;
  status?: unknown;
}

export type LogFields = Record<string, string>;

/** The field that names an object of each of Tidemark's kinds. */
const NAME_FIELD: Record<string, string> = {
  BackupPolicy: 'policy',
  Backup: 'backup',
  RestoreRequest: 'restoreRequest',
  BackupRepository: 'repository',
};

/** Controllers by the kind their reconcile keys name (the catalog controller reconciles repositories). */
const CONTROLLER_KIND: Record<string, string> = {
  backuppolicy: 'BackupPolicy',
  backup: 'Backup',
  restorerequest: 'RestoreRequest',
  backuprepository: 'BackupRepository',
  catalog: 'BackupRepository',
};

const text = (value: unknown): value is string => typeof value === 'string' && value !== '';

export function objectLogFields(object: LoggedObject): LogFields {
  const fields: LogFields = {};
  if (object.metadata.namespace) fields.namespace = object.metadata.namespace;
  if (object.metadata.name) fields[NAME_FIELD[object.kind] ?? 'name'] = object.metadata.name;
  const spec = (object.spec ?? {}) as { policy?: unknown; source?: unknown; from?: Record<string, unknown> };
  if (object.kind === 'Backup') {
    if (text(spec.policy)) fields.policy = spec.policy;
    if (text(spec.source)) fields.source = spec.source;
  }
  if (object.kind === 'RestoreRequest') {
    const backup = spec.from?.backupName ?? (object.status as { backupName?: unknown } | undefined)?.backupName;
    if (text(spec.from?.policy)) fields.policy = spec.from.policy;
    if (text(spec.from?.source)) fields.source = spec.from.source;
    if (text(backup)) fields.backup = backup;
  }
  return fields;
}

/** The same fields from a controller's reconcile key (`namespace/name`), for lines without the object. */
export function keyLogFields(controller: string, key: string): LogFields {
  const slash = key.indexOf('/');
  const [namespace, name] = slash < 0 ? ['', key] : [key.slice(0, slash), key.slice(slash + 1)];
  return objectLogFields({ kind: CONTROLLER_KIND[controller] ?? '', metadata: { name, namespace } });
}
