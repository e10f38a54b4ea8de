import type * as k8s from '@kubernetes/client-node';
import type { BackupRepositoryStatus } from '../../api/backuprepository.ts';
import type { BackupRepository } from '../../api/kinds.ts';
import { formatBytes } from '../../units.ts';
import { type AgentSettings, agentJob } from '../jobs/agent-job.ts';
import { type JobObserved, jobOutcome } from '../jobs/agent-result.ts';
import { LABELS } from '../jobs/labels.ts';
import { jobName } from '../jobs/naming.ts';
import { repositoryAccess } from '../jobs/repository-env.ts';
import { setCondition } from '../runtime/conditions.ts';
import { labelValue } from '../runtime/labels.ts';
import { instant, newestFirst } from '../runtime/time.ts';

export const PROBE_INTERVAL_MS = 10 * 60_000;
export const REPOSITORY_LABEL = 'tidemark.dev/repository';

export interface RepositoryObserved {
  repository: BackupRepository;
  /** Probe Jobs of this repository, newest first, with their results once ended. */
  probes: JobObserved<'probe'>[];
  /** Probe Jobs the API server refused to create, by name, with its message (the shell decides again). */
  rejected?: Map<string, string>;
  settings: AgentSettings;
  now: Date;
}

export interface RepositoryDecision {
  createJob?: k8s.V1Job;
  status: BackupRepositoryStatus;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
  requeueAfterMs: number;
}

/** Reasons of Ready=False, by the agent's error code. */
const REASONS: Record<string, string> = {
  Transient: 'Unreachable',
  AccessDenied: 'AccessDenied',
  ContainerMissing: 'ContainerMissing',
  WrongKey: 'WrongKey',
  Corrupt: 'Damaged',
  Unsupported: 'UnsupportedFormat',
};

/** The repository's probe Jobs, newest first: the other Jobs it owns (catalog syncs) are not probes. */
export function probesOf(jobs: Iterable<JobObserved>): JobObserved<'probe'>[] {
  const probes = [...jobs].filter((j) => j.job.metadata?.labels?.[LABELS.task] === 'probe');
  return newestFirst(probes, (p) => p.job.metadata?.creationTimestamp) as JobObserved<'probe'>[];
}

/**
 * The BackupRepository controller's decision, pure: probe the repository with an agent Job (the
 * operator never holds storage credentials) when it changed or every PROBE_INTERVAL_MS, initialise it
 * when empty, and report reachability, the key check and the stored size.
 */
export function decideRepository(observed: RepositoryObserved): RepositoryDecision {
  const { repository, now } = observed;
  const status: BackupRepositoryStatus = structuredClone(repository.status ?? {});
  const decision: RepositoryDecision = { status, events: [], requeueAfterMs: PROBE_INTERVAL_MS };
  const generation = repository.metadata.generation ?? 0;
  const latest = observed.probes[0];
  const ended = latest && jobOutcome(latest.job);
  const lastCheck = instant(status.lastCheckTime) ?? 0;
  const endedAt = latest && ended ? (endTime(latest.job) ?? 0) : 0;

  // The check time is when the probe ended (not when we looked), so re-reading the same probe is a no-op.
  if (latest && ended && endedAt > lastCheck) {
    const result = latest.result;
    status.lastCheckTime = new Date(endedAt).toISOString();
    if (ended === 'Complete' && result?.ok) {
      status.initialized = true;
      if (result.repositoryId) status.repositoryId = result.repositoryId;
      status.formatVersion = 1;
      status.storedBytes = result.storedBytes ?? 0;
      status.size = formatBytes(result.storedBytes ?? 0);
      status.conditions = setCondition(
        status.conditions,
        { type: 'Ready', status: 'True', reason: 'Reachable', message: 'reachable, key accepted' },
        generation,
        now,
      );
      if (result.initialized)
        decision.events.push({
          type: 'Normal',
          reason: 'RepositoryInitialized',
          message: `initialised repository ${result.repositoryId?.slice(0, 12)}`,
        });
    } else {
      const code = result?.error?.code ?? 'Internal';
      const message = result?.error?.message ?? 'the probe Job failed without a result';
      status.conditions = setCondition(
        status.conditions,
        { type: 'Ready', status: 'False', reason: REASONS[code] ?? 'ProbeFailed', message },
        generation,
        now,
      );
      decision.events.push({ type: 'Warning', reason: 'RepositoryUnreachable', message });
    }
    status.observedGeneration = Number(latest.job.metadata?.annotations?.['tidemark.dev/generation'] ?? generation);
  }

  const running = latest && !ended;
  const due =
    !status.lastCheckTime ||
    status.observedGeneration !== generation ||
    now.getTime() - (instant(status.lastCheckTime) ?? 0) >= PROBE_INTERVAL_MS;
  if (!running && due) {
    const slot = Math.floor(now.getTime() / PROBE_INTERVAL_MS);
    const name = jobName(`${repository.metadata.name}-probe-${generation}-${slot}`);
    const rejection = observed.rejected?.get(name);
    if (rejection) {
      const message = `could not create the probe Job ${name}: ${rejection}`;
      const before = status.conditions?.find((c) => c.type === 'Ready');
      status.conditions = setCondition(
        status.conditions,
        { type: 'Ready', status: 'False', reason: 'ProbeRejected', message },
        generation,
        now,
      );
      if (before?.status !== 'False' || before.message !== message)
        decision.events.push({ type: 'Warning', reason: 'RepositoryUnreachable', message });
      decision.requeueAfterMs = 60_000;
      return decision;
    }
    if (!observed.probes.some((p) => p.job.metadata?.name === name))
      decision.createJob = probeJob(repository, name, generation, observed.settings);
  }
  if (running || decision.createJob) decision.requeueAfterMs = 30_000;
  else if (status.lastCheckTime)
    decision.requeueAfterMs = Math.max(1000, (instant(status.lastCheckTime) ?? 0) + PROBE_INTERVAL_MS - now.getTime());
  return decision;
}

function probeJob(repository: BackupRepository, name: string, generation: number, settings: AgentSettings): k8s.V1Job {
  const access = repositoryAccess(repository, 'primary');
  const job = agentJob({
    policy: undefined,
    task: 'probe',
    name,
    owner: repository,
    labels: { [REPOSITORY_LABEL]: labelValue(repository.metadata.name ?? '') },
    settings,
    env: access.env,
    envFrom: access.envFrom,
    volumes: access.volumes,
    volumeMounts: access.volumeMounts,
  });
  job.metadata = {
    ...job.metadata,
    annotations: { ...job.metadata?.annotations, 'tidemark.dev/generation': String(generation) },
  };
  if (job.spec) {
    job.spec.backoffLimit = 0;
    job.spec.ttlSecondsAfterFinished = 3600;
  }
  return job;
}

/** When a Job ended: its completion time, else the time its Complete or Failed condition became true. */
function endTime(job: k8s.V1Job): number | undefined {
  const ended = job.status?.conditions?.find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  return instant(job.status?.completionTime) ?? instant(ended?.lastTransitionTime);
}
