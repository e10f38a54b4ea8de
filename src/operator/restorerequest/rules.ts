import type { PostRestoreScript, RestoreTargetRule } from '../../api/backuppolicy.ts';
import type { BackupPolicy, RestoreRequest } from '../../api/kinds.ts';
import type { LiveSourceCandidate, RestoreTarget } from '../jobs/access.ts';

/**
 * What a policy lets a restore do, beyond approvals: where it may write (spec.restore.targets) and
 * which SQL may run on the restored data (spec.restore.postRestoreScripts). Whoever may edit the
 * policy decides both; a RestoreRequest only picks among them.
 */

export type Refusal = { reason: string; message: string };

/** Without spec.restore.targets a policy allows only restores over its own sources, stated explicitly. */
export const DEFAULT_TARGETS: RestoreTargetRule[] = [{ original: true }];

/** `*` any run of characters, `?` exactly one; everything else literal; the whole name must match. */
export function matchesGlob(pattern: string, name: string): boolean {
  const source = [...pattern]
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 's').test(name);
}

/** A rule as people write it, for messages: `postgres pg-qa databases qa_*`. */
export function describeRule(rule: RestoreTargetRule): string {
  if (rule.original) return 'original: true';
  const db = rule.postgres ?? rule.mysql;
  if (db)
    return `${rule.postgres ? 'postgres' : 'mysql'} ${db.connectionSecret.name} databases ${db.databases.join(',')}`;
  return `volume claims ${(rule.volume?.claimNames ?? []).join(',')}`;
}

/**
 * The policy source a target would overwrite, if it names one of the namespace's live sources under
 * another spelling: the same connection Secret and a database that source backs up, or the same PVC
 * (named by the source, or selected by its labels). Two Secrets for one server are the agent's to
 * recognise (liveSourceCandidates): the operator does not read Secrets.
 */
export function liveSourceAt(
  target: RestoreTarget,
  policies: Iterable<BackupPolicy>,
  /** Labels of the namespace's PVCs: a PVC a source selects by label is that source too. */
  claimLabels?: Map<string, Record<string, string>>,
): string | undefined {
  for (const policy of policies)
    for (const source of policy.spec.sources) {
      const at = `source ${source.name} of policy ${policy.metadata.name}`;
      if (target.kind === 'volume') {
        if (source.volume?.claimName === target.claimName) return at;
        const selector = source.volume?.selector?.matchLabels;
        const labels = claimLabels?.get(target.claimName);
        if (selector && labels && Object.entries(selector).every(([key, value]) => labels[key] === value))
          return `${at} (it selects PVCs labelled ${Object.entries(selector)
            .map(([key, value]) => `${key}=${value}`)
            .join(',')})`;
        continue;
      }
      const db = source[target.engine];
      if (
        db?.connectionSecret.name === target.connectionSecret &&
        (db.allDatabases || (db.databases ?? []).includes(target.database))
      )
        return at;
    }
  return undefined;
}

/**
 * The sources a database target may be under another Secret (same engine, a Secret other than the
 * target's, backing up a database of the target's name): the operator cannot read Secrets to compare
 * servers, so the agent does (src/sources/live-source.ts). None for `original: true`, which is allowed
 * to write over its source.
 */
export function liveSourceCandidates(
  request: RestoreRequest,
  target: RestoreTarget,
  policies: Iterable<BackupPolicy>,
): LiveSourceCandidate[] {
  if (request.spec.target.original || target.kind !== 'database') return [];
  const candidates: LiveSourceCandidate[] = [];
  for (const policy of policies)
    for (const source of policy.spec.sources) {
      const db = source[target.engine];
      if (!db || db.connectionSecret.name === target.connectionSecret) continue;
      if (db.allDatabases || (db.databases ?? []).includes(target.database))
        candidates.push({
          name: `source ${source.name} of policy ${policy.metadata.name}`,
          connectionSecret: db.connectionSecret.name,
        });
    }
  return candidates;
}

function allows(rule: RestoreTargetRule, target: RestoreTarget): boolean {
  if (target.kind === 'volume') return (rule.volume?.claimNames ?? []).some((p) => matchesGlob(p, target.claimName));
  const db = rule[target.engine];
  return (
    db?.connectionSecret.name === target.connectionSecret && db.databases.some((p) => matchesGlob(p, target.database))
  );
}

/**
 * Whether `policy` lets `request` write `target` (resolved). `original: true` needs an `original`
 * rule; any other target must match one of the policy's rules and must not be a live source in
 * disguise. With no policy at all (disaster recovery from a repository no policy of the namespace
 * uses any more) only a PVC of the namespace may be written, after the default approval: no database
 * behind a Secret the requester may not even read.
 */
export function checkTarget(
  request: RestoreRequest,
  target: RestoreTarget,
  policy: BackupPolicy | undefined,
  policies: Iterable<BackupPolicy>,
  repository: string,
  claimLabels?: Map<string, Record<string, string>>,
): Refusal | undefined {
  const refuse = (message: string) => ({ reason: 'TargetNotAllowed', message });
  const where =
    target.kind === 'volume'
      ? `PVC ${target.claimName}`
      : `${target.engine} database ${target.database} (Secret ${target.connectionSecret})`;
  if (!policy)
    return target.kind === 'volume'
      ? undefined
      : refuse(
          `no BackupPolicy in ${request.metadata.namespace} uses repository ${repository}, so none lists the databases its snapshots may be restored into (spec.restore.targets); without one only a volume target is allowed, ${where} is refused`,
        );
  const rules = policy.spec.restore?.targets ?? DEFAULT_TARGETS;
  const listed = `policy ${policy.metadata.name} allows restores into: ${rules.map(describeRule).join('; ') || 'nothing'}${policy.spec.restore?.targets ? '' : ' (the default without spec.restore.targets)'}`;
  if (request.spec.target.original)
    return rules.some((r) => r.original) ? undefined : refuse(`the original source is not allowed: ${listed}`);
  const live = liveSourceAt(target, policies, claimLabels);
  if (live)
    return refuse(
      `${where} is ${live}: restoring over a live source needs target.original: true on a restore of that source`,
    );
  return rules.some((r) => allows(r, target)) ? undefined : refuse(`${where} is not allowed: ${listed}`);
}

/** The policy's script a request picks by name; an unknown name is refused, naming the scripts there are. */
export function chooseScript(
  request: RestoreRequest,
  policy: BackupPolicy | undefined,
): { script?: PostRestoreScript } | Refusal {
  const name = request.spec.postRestoreScript;
  if (!name) return {};
  const scripts = policy?.spec.restore?.postRestoreScripts ?? [];
  const script = scripts.find((s) => s.name === name);
  if (script) return { script };
  const available = scripts.map((s) => s.name).join(', ');
  return {
    reason: 'UnknownScript',
    message: policy
      ? `policy ${policy.metadata.name} has no post-restore script ${name} (${available ? `it has: ${available}` : 'it defines none'})`
      : `post-restore script ${name}: no BackupPolicy applies to this restore, so there are no scripts`,
  };
}
