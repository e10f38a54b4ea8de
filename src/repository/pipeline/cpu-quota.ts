import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs this process may use: the container's CPU quota (cgroup v2 `cpu.max`, else cgroup v1
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us`) rounded up, capped by the CPUs the scheduler gives it
 * (`os.availableParallelism()`, which sees cpusets and affinity but not quotas). Never less than 1.
 */
export function cpuQuota(read: (path: string) => string | undefined = readOptional): number {
  const available = availableParallelism();
  const v2 = read('/sys/fs/cgroup/cpu.max');
  const quota =
    v2 !== undefined
      ? parseCpuMax(v2)
      : parseCfsQuota(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return Math.max(1, Math.min(available, quota ?? available));
}

/** cgroup v2 `cpu.max`: "max 100000" (no limit: undefined) or "<quota> <period>" (CPUs, rounded up). */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period = '100000'] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return cpus(Number(quota), Number(period));
}

/** cgroup v1: quota -1 means no limit. */
export function parseCfsQuota(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined) return undefined;
  return cpus(Number(quota.trim()), Number(period.trim()));
}

function cpus(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
