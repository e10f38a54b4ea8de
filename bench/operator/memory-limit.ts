// The operator's memory limit as a container gets it: a memory cgroup the operator runs in, limited to
// what the chart's resources.limits.memory gives it. Node sizes its heap from that limit (libuv reads the
// cgroup), and the kernel kills a process that goes past it, so a history that does not fit shows as it
// would in a cluster: a heap exhausted, or an OOM kill.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../test/harness/tools.ts';

export interface MemoryCgroup {
  limitMiB: number;
  /** `command args` started inside the cgroup (a shell moves itself in, then execs: same pid). */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** Processes the kernel killed in the cgroup for going past its limit. */
  oomKills(): number;
  remove(): void;
}

/** The operator's memory limit in the chart (charts/tidemark/values.yaml resources.limits.memory), in MiB. */
export function chartMemoryLimitMiB(): number {
  const values = readFileSync(join(repoRoot, 'charts/tidemark/values.yaml'), 'utf8');
  const limit = /\n {2}limits:\n {4}memory: (\d+)(Mi|Gi)\n/.exec(values);
  if (!limit) throw new Error('charts/tidemark/values.yaml: no resources.limits.memory in Mi or Gi');
  return Number(limit[1]) * (limit[2] === 'Gi' ? 1024 : 1);
}

/** Where this machine's memory controller lives: cgroup v2 (unified) or v1. */
function memoryHierarchy(): { root: string; v2: boolean } {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = join(root, 'cgroup.controllers');
    if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('memory'))
      return { root, v2: true };
  }
  if (existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) return { root: '/sys/fs/cgroup/memory', v2: false };
  throw new Error('no cgroup memory controller (v2 or v1) on this machine: run without --memory-limit-mib 0');
}

export function memoryCgroup(name: string, limitMiB: number): MemoryCgroup {
  const { root, v2 } = memoryHierarchy();
  const dir = join(root, name);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitMiB * 1024 * 1024));
  } catch (error) {
    throw new Error(`cannot make the memory cgroup ${dir} (needs root): ${(error as Error).message}`);
  }
  return {
    limitMiB,
    wrap: (command, args) => ({
      command: '/bin/sh',
      args: ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', join(dir, 'cgroup.procs'), command, ...args],
    }),
    oomKills() {
      const events = readFileSync(join(dir, v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
      return Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? 0);
    },
    remove() {
      try {
        rmdirSync(dir);
      } catch {
        // A process still in it: the kernel keeps the group until it is empty; a later run reuses the name.
      }
    },
  };
}
