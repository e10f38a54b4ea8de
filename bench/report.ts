import type { Dataset, Mutation, SmallFilesDataset } from './dataset.ts';
import type { Measurement } from './measure.ts';
import type { ProfileSummary } from './profile.ts';

/** `unchanged`: an incremental backup with nothing changed since the first (the many-small-files set). */
export type Scenario = 'first' | 'incremental' | 'unchanged' | 'restore';

export interface StepResult {
  tool: string;
  scenario: Scenario;
  m: Measurement;
  /** Repository bytes on disk after the step (du -sb). */
  storedBytes: number;
  /** Bytes of the data set this step backed up or restored (for throughput). */
  sourceBytes: number;
}

export interface ProfileRun {
  scenario: Scenario;
  summary: ProfileSummary;
  m: Measurement;
}

export interface ReportInput {
  command: string;
  date: Date;
  durationS: number;
  machine: { cpu: string; nproc: number; memoryGiB: number; kernel: string; node: string; filesystem: string };
  tools: { name: string; version: string; settings: string }[];
  /** The 2 GiB set, when it ran. */
  big?: BigSetInput;
  /** The many-small-files set, when it ran. */
  smallFiles?: { dataset: SmallFilesDataset; results: StepResult[] };
  /** Relative difference within which two best wall times count as equal. */
  tolerance: number;
  /** Runs of every step per tool. */
  repeat: number;
}

export interface BigSetInput {
  dataset: {
    seed: string;
    files: number;
    totalBytes: number;
    bytesByKind: Dataset['bytesByKind'];
    dump: Dataset['dump'];
    afterFiles: number;
    afterBytes: number;
  };
  mutation: Mutation;
  results: StepResult[];
  profiles: ProfileRun[];
}

/**
 * A tool's step over the repetitions: the run with the lowest wall time (other processes on the machine
 * only ever add time, so the best run is the least disturbed one), and the range of wall times.
 */
interface Summary extends StepResult {
  minWallS: number;
  maxWallS: number;
  runs: number;
}

function summarize(results: StepResult[], scenario: Scenario): Summary[] {
  const tools = [...new Set(results.map((r) => r.tool))];
  return tools.flatMap((tool) => {
    const runs = results
      .filter((r) => r.tool === tool && r.scenario === scenario)
      .sort((a, b) => a.m.wallS - b.m.wallS);
    const best = runs[0];
    if (!best) return [];
    return [
      {
        ...best,
        minWallS: runs[0]?.m.wallS ?? 0,
        maxWallS: runs.at(-1)?.m.wallS ?? 0,
        runs: runs.length,
      },
    ];
  });
}

const MiB = 1024 * 1024;
const TITLES: Record<Scenario, string> = {
  first: 'First backup (empty repository)',
  incremental: 'Incremental backup (~1% changed)',
  unchanged: 'Incremental backup, nothing changed',
  restore: 'Restore of the latest snapshot (into an empty directory)',
};

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
const gib = (bytes: number) => (bytes / (1024 * MiB)).toFixed(2);
const cpu = (m: Measurement) => m.userS + m.sysS;

function table(results: Summary[]): string {
  const fastest = Math.min(...results.map((r) => r.m.wallS));
  const rows = results.map(
    (r) =>
      `| ${r.tool} | ${r.m.wallS.toFixed(1)} | ${r.minWallS.toFixed(1)}–${r.maxWallS.toFixed(1)} | ${(r.m.wallS / fastest).toFixed(2)}× | ${cpu(r.m).toFixed(1)} (${r.m.userS.toFixed(1)} + ${r.m.sysS.toFixed(1)}) | ${r.m.maxRssMiB.toFixed(0)} | ${mib(r.storedBytes)} | ${(r.sourceBytes / 1e6 / r.m.wallS).toFixed(0)} | ${r.m.otherCpuS.toFixed(1)} |`,
  );
  return [
    "| tool | best wall s | wall range s | vs fastest | CPU s (user + sys) | peak RSS MiB | stored MiB | throughput MB/s | others' CPU s |",
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

/**
 * Whether Tidemark's best wall time is at most the fastest other tool's divided by `speedup` (issue 14: 1.5 for
 * the 2 GiB set, 1 for the small files), within the tolerance, at equal or smaller stored size.
 */
function verdict(all: StepResult[], scenarios: readonly Scenario[], tolerance: number, speedup: number): string[] {
  const target = `${speedup > 1 ? `at least ${speedup}× faster than` : 'at least as fast as'} the fastest of restic, kopia and borg at equal or smaller stored size`;
  const lines: string[] = [];
  let met = true;
  const input = { tolerance };
  for (const scenario of scenarios) {
    const results = summarize(all, scenario);
    const ours = results.find((r) => r.tool === 'tidemark');
    const others = results.filter((r) => r.tool !== 'tidemark');
    if (!ours || others.length === 0) continue;
    const fastest = others.reduce((a, b) => (b.m.wallS < a.m.wallS ? b : a));
    const ratio = ours.m.wallS / fastest.m.wallS;
    const times = `${fastest.tool}, ${fastest.m.wallS.toFixed(1)} s): ${ours.m.wallS.toFixed(1)} s`;
    const compared =
      ratio <= 1 + input.tolerance
        ? ratio < 1
          ? `${(1 / ratio).toFixed(2)}× faster than the fastest other tool (${times}`
          : `on par with the fastest (${times}`
        : `**${ratio.toFixed(2)}× slower** than the fastest (${times}`;
    const speed =
      speedup > 1 && ratio * speedup > 1 + input.tolerance ? `${compared}, **short of ${speedup}×**` : compared;
    let stored = '';
    if (scenario !== 'restore') {
      const smaller = ours.storedBytes <= fastest.storedBytes;
      const diff = ((ours.storedBytes / fastest.storedBytes - 1) * 100).toFixed(0);
      stored = `; stored ${mib(ours.storedBytes)} MiB vs ${mib(fastest.storedBytes)} MiB (${smaller ? '' : '+'}${diff}%${smaller ? ', equal or smaller' : ', **larger**'})`;
      if (!smaller) met = false;
    }
    if (ratio * speedup > 1 + input.tolerance) met = false;
    const cpuNote = `; CPU ${cpu(ours.m).toFixed(1)} s vs ${cpu(fastest.m).toFixed(1)} s; peak RSS ${ours.m.maxRssMiB.toFixed(0)} MiB vs ${fastest.m.maxRssMiB.toFixed(0)} MiB`;
    lines.push(`- ${TITLES[scenario]}: ${speed}${stored}${cpuNote}.`);
  }
  lines.unshift(
    `Target: ${target} (best wall times within ${(input.tolerance * 100).toFixed(0)}% count as equal). **${met ? 'Met' : 'Not met'}** in this run:`,
    '',
  );
  return lines;
}

function limits(input: BigSetInput): string[] {
  if (input.profiles.length === 0) return [];
  const lines = [
    '### Where Tidemark spends its time',
    '',
    'A separate run of each Tidemark step under `node --cpu-prof` (same data, fresh repository; profiling adds some overhead). ' +
      "The profile samples only the main JavaScript thread; compression (node:zlib) and file I/O run on libuv's thread pool and appear there as idle time, so the process's whole CPU time is given beside it.",
    '',
  ];
  for (const p of input.profiles) {
    const s = p.summary;
    lines.push(
      `**${TITLES[p.scenario]}**: wall ${p.m.wallS.toFixed(1)} s, process CPU ${cpu(p.m).toFixed(1)} s, main thread busy ${(s.busyMs / 1000).toFixed(1)} s (${((s.busyMs / s.totalMs) * 100).toFixed(0)}% of the sampled time). Top self time on the main thread:`,
      '',
      '| function | self s | share of busy |',
      '| --- | ---: | ---: |',
      ...s.hotspots.map((h) => `| \`${h.name}\` | ${(h.selfMs / 1000).toFixed(2)} | ${(h.share * 100).toFixed(1)}% |`),
      '',
    );
  }
  return lines;
}

/** A warning when other processes used a noticeable share of the machine during the measured steps. */
function noise(results: StepResult[], nproc: number): string[] {
  const other = results.reduce((sum, r) => sum + r.m.otherCpuS, 0);
  const available = results.reduce((sum, r) => sum + r.m.wallS, 0) * nproc;
  const share = available > 0 ? other / available : 0;
  return share > 0.05
    ? [
        `- **Noise warning**: other processes used ${(share * 100).toFixed(0)}% of the machine's CPU during the measured steps; wall times are less reliable than usual (CPU times less so).`,
      ]
    : [`- Other processes used ${(share * 100).toFixed(1)}% of the machine's CPU during the measured steps.`];
}

function tables(results: StepResult[], scenarios: readonly Scenario[], level: string): string[] {
  return scenarios.flatMap((scenario) => {
    const summaries = summarize(results, scenario);
    return summaries.length ? [`${level} ${TITLES[scenario]}`, '', table(summaries), ''] : [];
  });
}

function produced(input: ReportInput): string {
  return `Produced by \`${input.command}\` on ${input.date.toISOString().replace(/\.\d+Z$/, 'Z')} (the run took ${(input.durationS / 60).toFixed(1)} min).`;
}

const BIG_SCENARIOS = ['first', 'incremental', 'restore'] as const;
const SMALL_FILES_SCENARIOS = ['first', 'unchanged', 'restore'] as const;

function renderBig(input: ReportInput, big: BigSetInput): string {
  const d = big.dataset;
  const m = big.mutation;
  const k = d.bytesByKind;
  const pct = (bytes: number) => ((bytes / d.totalBytes) * 100).toFixed(1);
  const out: string[] = [
    '# Repository engine benchmarks',
    '',
    '<!-- Generated by bench/run.ts; do not edit by hand: rerun `npm run bench` instead. -->',
    '',
    produced(input),
    '',
    '## Machine',
    '',
    `- CPU: ${input.machine.cpu}, ${input.machine.nproc} cores (nproc); memory ${input.machine.memoryGiB.toFixed(1)} GiB; Linux ${input.machine.kernel}`,
    `- Temporary directory (data set, repositories, restores): ${input.machine.filesystem}`,
    `- Node ${input.machine.node}`,
    ...input.tools.map((t) => `- ${t.name}: ${t.version}`),
    '',
    '## Settings',
    '',
    ...input.tools.map((t) => `- **${t.name}**: ${t.settings}`),
    '',
    '## Data set',
    '',
    `Generated deterministically (seed \`${d.seed}\`) into a temporary directory and removed afterwards: ${gib(d.totalBytes)} GiB in ${d.files} files. Each file is read once after it is written (as documents are), so under relatime the tools' own reads move no atimes and one tool's reads are never a change for the next.`,
    '',
    `- Database dump, ${mib(k.dump)} MiB (${pct(k.dump)}%): a real \`pg_dump\` (plain SQL with COPY blocks, PostgreSQL ${d.dump.postgres}) of a pgbench-schema database: \`pgbench -i -I dt -s ${d.dump.scale}\` creates the tables, SQL fills them deterministically (${(d.dump.scale * 100_000).toLocaleString('en')} accounts with seeded balances and pgbench's blank filler, ${d.dump.historyRows.toLocaleString('en')} history rows with seeded values and fixed timestamps).`,
    `- Text, ${mib(k.csv + k.log)} MiB (${pct(k.csv + k.log)}%): CSV order exports (${mib(k.csv)} MiB) and application logs with some stack traces (${mib(k.log)} MiB), from a seeded PRNG (sfc32).`,
    `- Random bytes, ${mib(k.random)} MiB (${pct(k.random)}%): "uploaded documents", the AES-128-CTR keystream of a key derived from the seed and the path (incompressible).`,
    '- Layout: 24 tenant directories; file sizes 80% small (1–64 KiB), 17% medium (64 KiB–4 MiB), 3% large (4–64 MiB), log-uniform within each range.',
    '',
    `Change before the incremental backup: ${mib(m.changedBytes)} MiB written (${pct(m.changedBytes)}% of the data set): ${m.rewrittenFiles} CSV files rewritten (${mib(m.rewrittenBytes)} MiB), ${m.appendedFiles} logs appended to (${mib(m.appendedBytes)} MiB), ${m.regions} regions of 64 KiB–1 MiB overwritten in place in the dump and in large uploads (${mib(m.regionBytes)} MiB), ${m.newFiles} new files (${mib(m.newBytes)} MiB), ${m.deletedFiles} small uploads deleted (${mib(m.deletedBytes)} MiB). Afterwards: ${gib(d.afterBytes)} GiB in ${d.afterFiles} files.`,
    '',
    '## Method',
    '',
    `- ${input.repeat} run${input.repeat === 1 ? '' : 's'} of every step per tool, one after another on the same data, each run with its own repository: every first backup, then the change, every incremental backup (into each repository), then every restore (from each). The order of the tools rotates from run to run, and \`sync\` runs before every step, so no tool pays for the writeback of the step before it. Tables show the best run, the one with the lowest wall time (its CPU time, peak RSS and stored size: other processes only ever add time, so it is the least disturbed), and the range of wall times. The data set fits in the page cache and sits there for all tools alike (nothing drops caches); restores write to the same disk.`,
    "- Wall time is measured around the process; CPU time (user + system) and peak RSS come from GNU time (`getrusage` of the child and its descendants; peak RSS is the largest single process's). Each command's startup (key derivation, opening the repository) is included.",
    '- Stored MiB: `du -sb` of the repository directory after the step (caches and configuration outside it are not counted). Throughput: bytes of the data set (first/incremental: all of it, as every tool scans all of it; restore: the restored bytes) per wall second, MB = 10^6 bytes.',
    "- Others' CPU s: CPU time the rest of the machine used while the step ran (/proc/stat busy time minus the tool's own): other processes competing for the cores. Near zero means a quiet machine.",
    ...noise(big.results, input.machine.nproc),
    '- The restores of the first run are checked file by file (SHA-256) against the data set; every restore is deleted before the next step.',
    '',
    ...tables(big.results, BIG_SCENARIOS, '##'),
    '## Verdict',
    '',
    ...verdict(big.results, BIG_SCENARIOS, input.tolerance, 1.5),
    '',
    ...limits(big),
  ];
  return out.join('\n').trim();
}

function renderSmallFiles(input: ReportInput, set: NonNullable<ReportInput['smallFiles']>): string {
  const d = set.dataset;
  return [
    '## Many small files',
    '',
    '<!-- Generated by bench/run.ts; do not edit by hand: rerun `npm run bench -- --set small-files` instead. -->',
    '',
    produced(input),
    '',
    `Machine: ${input.machine.cpu}, ${input.machine.nproc} cores, ${input.machine.filesystem}, Node ${input.machine.node}; tools and settings as above (${input.tools.map((t) => t.version).join('; ')}).`,
    '',
    `A document volume: ${d.files.toLocaleString('en')} text files of 1–4 KiB (uniform; CSV exports and logs as in the 2 GiB set), ${(d.totalBytes / MiB).toFixed(1)} MiB, 200 to a directory in ${d.dirs.toLocaleString('en')} directories (\`group-NN/dir-NNN/doc-N.{csv,log}\`), generated deterministically (seed \`${d.seed}\`), each file read once after it is written (as above). Each tool backs it up into an empty repository, backs it up again with nothing changed (an incremental, the parent found as for the 2 GiB set), and restores the latest snapshot into an empty directory; ${input.repeat} run${input.repeat === 1 ? '' : 's'} each, measured as above (GNU time, \`sync\` before each step). The first run's restores are checked file by file.`,
    '',
    ...noise(set.results, input.machine.nproc),
    '',
    ...tables(set.results, SMALL_FILES_SCENARIOS, '###'),
    '### Verdict',
    '',
    ...verdict(set.results, SMALL_FILES_SCENARIOS, input.tolerance, 1),
  ]
    .join('\n')
    .trim();
}

/** The sections of BENCHMARKS.md this run wrote, by marker name. */
export function renderReport(input: ReportInput): Record<string, string> {
  return {
    ...(input.big ? { engine: renderBig(input, input.big) } : {}),
    ...(input.smallFiles ? { 'small-files': renderSmallFiles(input, input.smallFiles) } : {}),
  };
}
