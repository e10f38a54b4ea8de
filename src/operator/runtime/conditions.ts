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
