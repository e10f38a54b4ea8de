import { createHash } from 'node:crypto';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** The `-<type>-<stamp>` tail of a scheduled Backup's name (backuppolicy/schedule.ts backupName). */
const NAME_TAIL = /-(full|incr)-[0-9]{8}t[0-9]{4}([0-9]{2})?z$/;
const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/**
 * The Job name for a Backup: a DNS-1123 label of at most 63 characters (Jobs label their pods with it).
 * A short name without dots is used as is; otherwise dots become dashes, the front is cut, and an 8-hex hash
 * of the whole Backup name is added, keeping the `-<type>-<stamp>` tail readable when there is one.
 */
export function jobName(backup: string): string {
  if (backup.length <= 63 && LABEL.test(backup)) return backup;
  const flat = backup.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const tail = NAME_TAIL.exec(flat)?.[0] ?? '';
  const hashed = `-${shortHash(backup)}${tail}`;
  const head = flat
    .slice(0, flat.length - tail.length)
    .slice(0, 63 - hashed.length)
    .replace(/-+$/, '');
  return `${head || 'backup'}${hashed}`;
}

/**
 * A Job name unique to one object instance: the base name and the head of the object's uid, so a
 * re-created object of the same name never collides with, or adopts, the Job of the one before.
 */
export function ownedJobName(owner: { metadata: { uid?: string } }, base: string): string {
  const uid = (owner.metadata.uid ?? '').replace(/-/g, '').slice(0, 8);
  return jobName(uid ? `${base}-${uid}` : base);
}
