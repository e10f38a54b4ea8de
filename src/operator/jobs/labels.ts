/** Labels on agent Jobs (and the objects made for a Backup): what they work for, and which task. */
export const LABELS = {
  backup: 'tidemark.dev/backup',
  policy: 'tidemark.dev/policy',
  source: 'tidemark.dev/source',
  task: 'tidemark.dev/task',
} as const;

/**
 * Who an agent Job works for, as annotations: Jobs that outlive their object (forget Jobs have no
 * owner reference) are still found by the object's uid, and never by a later object of the same name.
 */
export const OWNER_ANNOTATIONS = {
  kind: 'tidemark.dev/owner-kind',
  name: 'tidemark.dev/owner-name',
  uid: 'tidemark.dev/owner-uid',
} as const;
