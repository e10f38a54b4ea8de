import type { Condition } from '../../api/common.ts';

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * Sets a condition in a list (Kubernetes conventions): `lastTransitionTime` changes only when the
 * status changes; reason, message and observedGeneration are refreshed. Pure; returns a new list.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  input: ConditionInput,
  generation: number | undefined,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === input.type);
  const next: Condition = {
    ...input,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : now.toISOString(),
  };
  return [...list.filter((c) => c.type !== input.type), next].sort((a, b) => a.type.localeCompare(b.type));
}

export function conditionStatus(conditions: Condition[] | undefined, type: string): Condition['status'] | undefined {
  return conditions?.find((c) => c.type === type)?.status;
}

/**
 * The conditions of `types` that are False in `after` and were not False for the same reason and
 * message in `before`: what deserves a Warning Event once, not on every pass that rewrites status.
 */
export function newlyFalse(
  before: Condition[] | undefined,
  after: Condition[] | undefined,
  types: string[],
): Condition[] {
  return (after ?? []).filter((c) => {
    if (!types.includes(c.type) || c.status !== 'False') return false;
    const was = before?.find((b) => b.type === c.type);
    return was?.status !== 'False' || was.reason !== c.reason || was.message !== c.message;
  });
}
