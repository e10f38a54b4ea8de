import { TidemarkError } from '../errors.ts';
import { log } from '../log.ts';
import type { Progress } from '../repository/progress.ts';
import { Repository } from '../repository/repository.ts';
import { openStorage, redactUrl } from '../repository/storage/url.ts';
import { writeResult } from './result.ts';
import { REPOSITORY_ENV, RESULT_FILE_ENV, required } from './tasks/env.ts';
import type { AgentTaskName } from './tasks/names.ts';
import { TASKS } from './tasks/registry.ts';
import type { AnyAgentTask, TaskContext, TaskFailure } from './tasks/task.ts';

/**
 * What a Job runs: one task of tasks/, its input read from the environment the operator put in the pod
 * spec (secrets through secretKeyRef only), its result written as JSON to the termination message
 * (RESULT_FILE_ENV; else stdout) and its progress to the JSON log. TIDEMARK_LOG_FIELDS (src/log.ts),
 * TIDEMARK_RETRY_BUDGET (storage) and the database connection variables (sources/connection.ts) are
 * read where they are used.
 */
export async function runAgent(name: AgentTaskName, env: NodeJS.ProcessEnv = process.env): Promise<Reported> {
  const task: AnyAgentTask = TASKS[name];
  const resultFile = env[RESULT_FILE_ENV];
  let result: Reported;
  try {
    result = { ok: true, ...(await task.run(task.input(env), context(name, env))) };
    log.info({ event: `${name}-succeeded`, ...result, objects: undefined }, `${name} succeeded`);
  } catch (error) {
    const code = error instanceof TidemarkError ? error.code : 'Internal';
    result = { ok: false, error: { code, message: (error as Error).message } };
    log.error({ event: `${name}-failed`, code, err: (error as Error).message }, `${name} failed`);
  }
  if (resultFile) writeResult(resultFile, result);
  else process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

/** A task's result with `ok: true`, or its failure: the JSON of the termination message. */
type Reported = ({ ok: true } & object) | TaskFailure;

function context(name: AgentTaskName, env: NodeJS.ProcessEnv): TaskContext {
  let opened: Promise<Repository> | undefined;
  return {
    env,
    repository: () => {
      opened ??= (async () => {
        const url = required(env, REPOSITORY_ENV.url);
        const repository = await Repository.open(openStorage(url, env), Buffer.from(required(env, REPOSITORY_ENV.key)));
        log.info({ event: `${name}-started`, repository: redactUrl(url) }, `${name} started`);
        return repository;
      })();
      return opened;
    },
    onProgress: (progress: Progress) => log.info({ event: 'progress', ...progress }, `${progress.operation} progress`),
  };
}
