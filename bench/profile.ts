// Summarizes a V8 CPU profile (`node --cpu-prof`): self time per function, the top ones first.
// Only the main JavaScript thread is sampled: work on libuv's thread pool (zlib compression, file
// reads and writes, pbkdf/scrypt) shows there as idle time, so the report also gives the process's
// whole CPU time for comparison.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoRoot } from '../test/harness/tools.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  name: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  /** Wall time covered by samples. */
  totalMs: number;
  /** Sampled time the main thread was not idle. */
  busyMs: number;
  hotspots: Hotspot[];
}

function label(frame: ProfileNode['callFrame']): string {
  if (!frame.url) return frame.functionName || '(anonymous)';
  let where = frame.url.replace(/^file:\/\//, '');
  if (where.startsWith(repoRoot)) where = relative(repoRoot, where);
  return `${frame.functionName || '(anonymous)'} (${where}:${frame.lineNumber + 1})`;
}

/** Reads the single .cpuprofile written into `dir` and returns its `top` functions by self time. */
export async function summarizeProfile(dir: string, top = 12): Promise<ProfileSummary> {
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    const delta = profile.timeDeltas[i] ?? 0;
    totalUs += delta;
    if (!node) continue;
    const name = label(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + delta);
  }
  const idleUs = self.get('(idle)') ?? 0;
  const busyUs = totalUs - idleUs;
  const hotspots = [...self.entries()]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { totalMs: totalUs / 1000, busyMs: busyUs / 1000, hotspots };
}
