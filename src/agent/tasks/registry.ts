import { audit } from './audit.ts';
import { backup } from './backup.ts';
import { catalog } from './catalog.ts';
import { drill } from './drill.ts';
import { exportTask } from './export.ts';
import { forget } from './forget.ts';
import type { AgentTaskName } from './names.ts';
import { probe } from './probe.ts';
import { replicate } from './replicate.ts';
import { restore } from './restore.ts';
import type { AgentTask, TaskFailure } from './task.ts';

/** Every agent task by name: a new task is its module and one line here (and its name in names.ts). */
export const TASKS = {
  backup,
  restore,
  replicate,
  forget,
  probe,
  catalog,
  drill,
  export: exportTask,
  audit,
} satisfies {
  [N in AgentTaskName]: AgentTask<N, unknown, object, unknown>;
};

export type TaskResults = { [N in AgentTaskName]: Awaited<ReturnType<(typeof TASKS)[N]['run']>> };

/**
 * What a Job of task N reports, as the operator reads it back from the termination message: the
 * task's result (any field may be missing: cut to fit the message, or written by another agent
 * version), or its failure.
 */
export type AgentResult<N extends AgentTaskName = AgentTaskName> =
  | { [K in N]: { ok: true; error?: undefined } & Partial<TaskResults[K]> }[N]
  | TaskFailure;
