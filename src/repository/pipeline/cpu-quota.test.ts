import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { cpuQuota, parseCfsQuota, parseCpuMax } from './cpu-quota.ts';

describe('cpu quota', () => {
  it('reads cgroup v2 cpu.max: no limit, whole and fractional CPUs rounded up', () => {
    assert.equal(parseCpuMax('max 100000\n'), undefined);
    assert.equal(parseCpuMax('200000 100000\n'), 2);
    assert.equal(parseCpuMax('150000 100000'), 2);
    assert.equal(parseCpuMax('50000 100000'), 1);
    assert.equal(parseCpuMax('400000'), 4, 'the period defaults to 100000');
    assert.equal(parseCpuMax('garbage 100000'), undefined);
    assert.equal(parseCpuMax('0 100000'), undefined);
  });

  it('reads cgroup v1 cfs quota and period; -1 is no limit', () => {
    assert.equal(parseCfsQuota('-1\n', '100000\n'), undefined);
    assert.equal(parseCfsQuota('300000\n', '100000\n'), 3);
    assert.equal(parseCfsQuota('300000', undefined), undefined);
  });

  it('prefers v2, falls back to v1, then to the CPUs available, never above them nor below 1', () => {
    const files = (map: Record<string, string>) => (path: string) => map[path];
    const available = availableParallelism();
    assert.equal(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': '100000 100000' })), 1);
    assert.equal(
      cpuQuota(
        files({
          '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000',
          '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
        }),
      ),
      1,
    );
    assert.equal(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' })), available);
    assert.equal(cpuQuota(files({})), available);
    assert.equal(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': `${1000 * 100000} 100000` })), available);
  });
});
