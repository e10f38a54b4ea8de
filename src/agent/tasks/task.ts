import type * as k8s from '@kubernetes/client-node';
import type { ErrorCode } from '../../errors.ts';
import type { ProgressListener } from '../../repository/progress.ts';
import type { Repository } from '../../repository/repository.ts';
import type { AgentTaskName } from './names.ts';

/**
 * One agent task: the contract between the operator, which writes a Job's environment, and the agent,
 * which reads it, runs, and reports the result as JSON in the pod's termination message (result.ts).
 * The variable names a task owns exist once, in its module, used by both `jobEnv` and `input`; those
 * several tasks share (repository, source, target, snapshot) are in env.ts and snapshot.ts.
 */
export interface AgentTask<Name extends AgentTaskName, Input, Result extends object, JobInput> {
  readonly name: Name;
  /** activeDeadlineSeconds of its Job, unless the policy's jobTemplate sets one. */
  readonly deadlineSeconds: number;
  /** The operator's side: the task's own variables in the Job's env (repository, source and target access come beside them). */
  jobEnv(job: JobInput): k8s.V1EnvVar[];
  /** The agent's side: those variables read back and checked (an InvalidArgument error names the variable). */
  input(env: NodeJS.ProcessEnv): Input;
  run(input: Input, context: TaskContext): Promise<Result>;
}

export interface TaskContext {
  /** The pod's environment: passwords (PGPASSWORD, MYSQL_PWD), provider credentials, TLS files. */
  env: NodeJS.ProcessEnv;
  /** The repository at TIDEMARK_REPO, opened on the first call (the task's start is logged then). */
  repository(): Promise<Repository>;
  onProgress: ProgressListener;
}

/** How any task fails: a code from the one ErrorCode union (what the operator branches on) and a message. */
export interface TaskFailure {
  ok: false;
  error: { code: ErrorCode; message: string };
}

/** A task of any input and result, as the registry and the dispatcher hold it. */
export type AnyAgentTask = AgentTask<AgentTaskName, unknown, object, unknown>;
