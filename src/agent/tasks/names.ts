/**
 * The agent's tasks by name: what `tidemark agent <task>` accepts and a Job's `tidemark.dev/task` label.
 * Each is one module beside this file (its input, Job env, result, deadline and run), registered in
 * registry.ts; the names live apart so the CLI lists them without loading the agent.
 */
export const AGENT_TASKS = [
  'backup',
  'restore',
  'replicate',
  'forget',
  'probe',
  'catalog',
  'drill',
  'export',
  'audit',
] as const;
export type AgentTaskName = (typeof AGENT_TASKS)[number];
