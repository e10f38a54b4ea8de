// Measures the operator at scale on a real control plane (etcd + kube-apiserver + kube-controller-manager
// from test/harness, no kubelet) and writes the "Operator" section of BENCHMARKS.md (not run in CI):
//
//   npm run bench:operator [-- --policies 2000 --namespaces 20 --backups-per-policy 100 --lag-policies 200
//                              --steady-minutes 6 --sync-timeout-minutes 30 --lag-slots 2 --scrapes 20 --memory-limit-mib N --source --profile --keep --out FILE]
//
// The operator runs compiled, as the image runs it (tsc into .work/bench-operator/); --source runs it with
// tsx from src/ instead, as the tests do (tsx costs ~100 MiB of RSS more).
// 1. Creates the namespaces (one BackupRepository each) and the BackupPolicies, all quiet (the next run is
//    on 1 January), each with a history of --backups-per-policy finished Backups (bench/operator/history.ts:
//    the status the Backup controller writes, per-table record counts included), written straight into
//    etcd as the API server stores them, checked against witnesses created through the API server
//    (--backup-concurrency: etcd transactions in flight); times the creation, reads etcd's db size and
//    restarts kube-apiserver so its watch cache starts from a LIST. Then starts `tidemark operator` as
//    its own process and times until every policy has been reconciled (status.observedGeneration =
//    metadata.generation, Ready condition set).
// 2. Peak RSS of the operator process (VmHWM) after that, and at the end.
// 2b. /metrics: --scrapes scrapes one after another once the policies are reconciled; time per scrape
//    and body size (object metrics are computed at scrape time from the informer caches).
// 3. Steady state: with nothing due, the operator's requests per minute from the API server's
//    apiserver_request_total (watches counted apart), over --steady-minutes (default 6: longer than the
//    policy controller's 5-minute requeue, so a periodic resync shows).
// 4. Schedule lag: --lag-policies of the policies are patched to run every minute from the next whole
//    minute; their source selects no PVC, so each Backup fails at once (no Job) and the next slot may run.
//    Lag = when the Backup appeared (watched from here, ms) − its spec.scheduledTime, over --lag-slots slots.
// --memory-limit-mib runs the operator in a memory cgroup of that size, as a container (default: the chart's
// resources.limits.memory; 0: no limit; needs root).
// --profile runs the operator under `node --cpu-prof` (10 ms samples) and adds its hotspots.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { NODE_COMMAND, NODE_RUNTIME_FLAGS, OPERATOR_NODE_OPTIONS } from '../src/cli/runtime-flags.ts';
import { startCluster } from '../test/harness/cluster.ts';
import { freePort } from '../test/harness/ports.ts';
import { startProcess } from '../test/harness/process.ts';
import { repoRoot } from '../test/harness/tools.ts';
import { makeWorkDir } from '../test/harness/workdir.ts';
import { measure } from './measure.ts';
import {
  difference,
  isOperatorRequest,
  isWatch,
  parseKey,
  type RequestCounts,
  requestCounts,
  total,
} from './operator/apiserver.ts';
import { buildOperator } from './operator/build.ts';
import { dbSize } from './operator/etcd.ts';
import { createHistory, HISTORY_SOURCES, historyItems } from './operator/history.ts';
import { limitsOf } from './operator/limits.ts';
import { chartMemoryLimitMiB, memoryCgroup } from './operator/memory-limit.ts';
import { allPolicies, createObjects, layout, makeEveryMinute } from './operator/objects.ts';
import { sampleProcess } from './operator/proc.ts';
import { type OperatorReport, renderSection, type Target } from './operator/report.ts';
import { measureScrapes } from './operator/scrape.ts';
import { watchBackups, watchReconciled } from './operator/watch.ts';
import { type ProfileSummary, summarizeProfile } from './profile.ts';
import { writeSections } from './section.ts';

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '2000' },
    namespaces: { type: 'string', default: '20' },
    'backups-per-policy': { type: 'string', default: '100' },
    'backup-concurrency': { type: 'string', default: '4' },
    'lag-policies': { type: 'string', default: '200' },
    'steady-minutes': { type: 'string', default: '6' },
    'sync-timeout-minutes': { type: 'string', default: '30' },
    'lag-slots': { type: 'string', default: '2' },
    'memory-limit-mib': { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    scrapes: { type: 'string', default: '20' },
    profile: { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'BENCHMARKS.md') },
  },
});
const policies = Number(values.policies);
const namespaces = Number(values.namespaces);
const backupsPerPolicy = Number(values['backups-per-policy']);
const backupConcurrency = Number(values['backup-concurrency']);
const lagPolicies = Number(values['lag-policies']);
const steadyMinutes = Number(values['steady-minutes']);
const syncTimeoutMinutes = Number(values['sync-timeout-minutes']);
const lagSlots = Number(values['lag-slots']);
const concurrency = Number(values.concurrency);
const scrapes = Number(values.scrapes);
// What the chart gives the operator unless told otherwise (0: no limit).
const memoryLimitMiB =
  values['memory-limit-mib'] === undefined ? chartMemoryLimitMiB() : Number(values['memory-limit-mib']);
const args = process.argv.slice(2);
const commandLine = `npm run bench:operator${args.length ? ` -- ${args.join(' ')}` : ''}`;

const TARGET = { syncS: 60, rssMiB: 300, steadyPerMin: 10, lagP99S: 2, scrapeMs: 1000 };
const AGENT_IMAGE = 'ghcr.io/tidemark-dev/tidemark:bench';
const MINUTE = 60_000;
/** How long the steady-state count waits for the start-up catch-up to end. */
const SETTLE_MINUTES = 15;

const log = (message: string) => process.stdout.write(`bench:operator: ${message}\n`);
const started = Date.now();
const work = makeWorkDir('bench-operator');
if (values.keep) process.env.TIDEMARK_KEEP_WORKDIR = '1';

function machine(): string[] {
  const rev = (() => {
    try {
      const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: repoRoot }).toString().trim() !== '';
      return `${head}${dirty ? '-dirty' : ''}`;
    } catch {
      return 'unknown';
    }
  })();
  const apiserver = (() => {
    try {
      return execFileSync(join(repoRoot, '.tools', 'bin', 'kube-apiserver'), ['--version'])
        .toString()
        .trim();
    } catch {
      return 'kube-apiserver';
    }
  })();
  return [
    `CPU: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores (nproc); memory ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; Linux ${release()}`,
    `Node ${process.version}; tidemark ${rev}, ${
      values.source
        ? 'run from source with tsx (`node --import tsx src/cli/main.ts operator`, as the tests run it)'
        : `compiled by \`tsc -p tsconfig.build.json\` and run as the image runs it (\`${NODE_COMMAND} dist/cli/main.js operator\`)`
    }`,
    `Load average when the run started: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(
        ' ',
      )} (other work on the machine shares its ${cpus().length} cores with the operator and the control plane)`,
    `Control plane (test/harness/cluster.ts) on the same machine: etcd (--unsafe-no-fsync), ${apiserver}, kube-controller-manager; no kubelet and no scheduler`,
  ];
}

const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;

/** A request of the operator's other than a watch. */
const isOperatorCall = (k: ReturnType<typeof parseKey>) => isOperatorRequest(k) && !isWatch(k);

/** The operator's requests, watches aside. */
function operatorOnly(counts: RequestCounts): RequestCounts {
  return new Map([...counts].filter(([key]) => isOperatorCall(parseKey(key))));
}

/** Resolves once the operator's /readyz answers 200; fails if it exits first or `timeoutMs` passes. */
async function untilReady(port: number, operator: ReturnType<typeof startProcess>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (operator.child.exitCode !== null || operator.child.signalCode !== null)
      throw new Error(
        `the restarted operator exited (${operator.child.signalCode ?? operator.child.exitCode}); see ${operator.logFile}`,
      );
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`the restarted operator was not ready within ${timeoutMs / MINUTE} minutes`);
}

async function main(): Promise<void> {
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const description = machine();
  log(`work directory ${work.path}`);
  log('starting etcd, kube-apiserver and kube-controller-manager');
  const cluster = await startCluster(join(work.path, 'cluster'));
  const kc = cluster.kubeConfig;
  const profileDir = join(work.path, 'profile');
  const operatorLog = join(work.path, 'operator.log');
  let operator: ReturnType<typeof startProcess> | undefined;
  const memory = memoryLimitMiB > 0 ? memoryCgroup('tidemark-bench-operator', memoryLimitMiB) : undefined;
  try {
    // 1. Objects, then the operator.
    const l = layout(policies, namespaces);
    let t = performance.now();
    await createObjects(kc, l, concurrency);
    const createS = (performance.now() - t) / 1000;
    log(`created ${namespaces} namespaces, repositories and ${policies} policies in ${createS.toFixed(1)} s`);
    const items = historyItems(allPolicies(l), backupsPerPolicy);
    t = performance.now();
    const cpuBeforeHistory = process.cpuUsage();
    const backupCount = await createHistory(kc, cluster.etcd, items, backupConcurrency, new Date(), (done) =>
      log(`  ${done} Backups written, ${((performance.now() - t) / 1000).toFixed(0)} s`),
    );
    const historyS = (performance.now() - t) / 1000;
    const historyCpu = process.cpuUsage(cpuBeforeHistory);
    const etcdDb = await dbSize(cluster.etcd);
    log(
      `created ${backupCount} Backups with their status in ${historyS.toFixed(1)} s (${(backupCount / historyS).toFixed(0)}/s; ${backupConcurrency} in flight, bench process CPU ${((historyCpu.user + historyCpu.system) / 1e6).toFixed(0)} s); etcd db ${(etcdDb.bytes / 1024 ** 2).toFixed(0)} MiB (${(etcdDb.inUseBytes / 1024 ** 2).toFixed(0)} MiB in use)`,
    );
    if (backupCount !== items.length)
      throw new Error(`the API server lists ${backupCount} Backups, not ${items.length}`);
    // The API server's watch cache would replay the seeded history one event at a time, throttled by its
    // slowest watcher (the controller manager's): far behind etcd for longer than the run. Restarted, it
    // starts from a LIST, as an API server over a long-lived history does.
    t = performance.now();
    await cluster.restartApiServer();
    const restartS = (performance.now() - t) / 1000;
    log(`restarted kube-apiserver over the history in ${restartS.toFixed(1)} s`);

    const entry = values.source
      ? ['--import', import.meta.resolve('tsx'), join(repoRoot, 'src/cli/main.ts')]
      : [await buildOperator(join(work.path, 'build.log'), (m) => log(`WARNING: ${m}`))];
    const cliAlone = await measure(
      { command: process.execPath, args: [...entry, '--version'] },
      join(work.path, 'build.log'),
      work.path,
    );
    const reconciled = await watchReconciled(kc, policies);
    const nodeArgs = values.profile ? ['--cpu-prof', '--cpu-prof-interval=10000', `--cpu-prof-dir=${profileDir}`] : [];
    if (values.profile) mkdirSync(profileDir, { recursive: true });
    const metricsPort = await freePort();
    const healthPort = await freePort();
    reconciled.started();
    const spawnOperator = (extraNodeArgs: string[], logFile: string) => {
      const args = [
        ...NODE_RUNTIME_FLAGS,
        ...extraNodeArgs,
        ...entry,
        'operator',
        '--agent-image',
        AGENT_IMAGE,
        '--metrics-port',
        String(metricsPort),
        '--health-port',
        String(healthPort),
      ];
      const spawned = memory?.wrap(process.execPath, args) ?? { command: process.execPath, args };
      return startProcess('tidemark-operator', spawned.command, spawned.args, {
        logFile,
        // As the Deployment runs it.
        env: { PATH: process.env.PATH ?? '', KUBECONFIG: cluster.kubeconfigPath, NODE_OPTIONS: OPERATOR_NODE_OPTIONS },
      });
    };
    operator = spawnOperator(nodeArgs, operatorLog);
    const pid = operator.child.pid as number;
    let stopping = false;
    const spawnedAt = performance.now();
    const exited = operator.exited.then((code) => {
      if (!stopping)
        throw new Error(earlyExit(operator?.child.signalCode ?? code, (performance.now() - spawnedAt) / 1000));
      return Number.NaN;
    });
    const earlyExit = (how: string | number | null, afterS: number) => {
      const limit = memory
        ? `; memory limit ${memory.limitMiB} MiB, OOM kills in its cgroup: ${memory.oomKills()}`
        : '';
      const tail = readFileSync(operatorLog, 'utf8').trim().split('\n').slice(-3).join(' | ').slice(0, 600);
      return `the operator exited early (${how}) ${afterS.toFixed(0)} s after its start${limit}; log ${operatorLog} ends: ${tail}`;
    };
    // Cancelled once synced: a pending deadline would hold the process open, then fail a finished run.
    const syncDeadline = new AbortController();
    const timeout = sleep(syncTimeoutMinutes * MINUTE, undefined, { signal: syncDeadline.signal }).then(() => {
      throw new Error(`not every policy was reconciled within ${syncTimeoutMinutes} minutes`);
    });
    const firstMs = await Promise.race([reconciled.first, exited, timeout]);
    const syncMs = await Promise.race([reconciled.all, exited, timeout]);
    syncDeadline.abort();
    /** Each later step ends the run if the operator is gone (e.g. past its memory limit) rather than measure nothing. */
    const stillRunning = () => {
      const child = operator?.child;
      if (child && (child.exitCode !== null || child.signalCode !== null))
        throw new Error(earlyExit(child.signalCode ?? child.exitCode, (performance.now() - spawnedAt) / 1000));
    };
    const afterSync = sampleProcess(pid);
    await reconciled.stop();
    log(
      `first policy reconciled ${(firstMs / 1000).toFixed(1)} s, all ${policies} after ${(syncMs / 1000).toFixed(1)} s; peak RSS ${afterSync.peakRssMiB.toFixed(0)} MiB, CPU ${afterSync.cpuS.toFixed(1)} s`,
    );

    // 2b. /metrics with every policy in the caches.
    const scraped = await measureScrapes(metricsPort, scrapes).catch(async (error: unknown) => {
      // A process that just died closes its sockets before its exit is reported.
      await Promise.race([operator?.exited, sleep(5_000)]);
      stillRunning();
      throw error;
    });
    const scrapeP50 = percentile(scraped.timesMs, 0.5);
    const scrapeMax = percentile(scraped.timesMs, 1);
    log(
      `/metrics: ${scrapes} scrapes, p50 ${scrapeP50.toFixed(0)} ms, max ${scrapeMax.toFixed(0)} ms; ${(scraped.bytes / 1024).toFixed(0)} KiB, ${scraped.samples} samples`,
    );
    if (scraped.sourceSeries !== policies * HISTORY_SOURCES.length)
      log(
        `WARNING: ${scraped.sourceSeries} tidemark_source_rpo_seconds series for ${policies} ${HISTORY_SOURCES.length}-source policies`,
      );

    // 3. Steady state: nothing due; count the operator's requests minute by minute, once the start-up
    // catch-up (the daily reports a seeded history lacks, reads of record counts) is over: the first
    // minute with no more than the steady target's requests, within SETTLE_MINUTES.
    log(`settling: until a minute with ≤ ${TARGET.steadyPerMin} operator requests (at most ${SETTLE_MINUTES} min)`);
    const settleStart = await requestCounts(kc);
    let settled = settleStart;
    let catchUpMinutes = 0;
    while (catchUpMinutes < SETTLE_MINUTES) {
      await sleep(MINUTE);
      catchUpMinutes += 1;
      const now = await requestCounts(kc);
      const inMinute = total(difference(settled, now), isOperatorCall);
      settled = now;
      log(`  settling minute ${catchUpMinutes}: ${inMinute} operator requests`);
      if (inMinute <= TARGET.steadyPerMin) break;
    }
    stillRunning();
    const catchUpRequests = total(difference(settleStart, settled), isOperatorCall);
    log(`counting requests for ${steadyMinutes} min`);
    const cpuBeforeSteady = sampleProcess(pid).cpuS;
    const snapshots = [await requestCounts(kc)];
    for (let minute = 0; minute < steadyMinutes; minute++) {
      await sleep(MINUTE);
      snapshots.push(await requestCounts(kc));
      const last = difference(snapshots.at(-2) as RequestCounts, snapshots.at(-1) as RequestCounts);
      log(`  minute ${minute + 1}: ${total(last, isOperatorCall)} operator requests`);
    }
    stillRunning();
    const afterSteady = sampleProcess(pid);
    const steady = difference(snapshots[0] as RequestCounts, snapshots.at(-1) as RequestCounts);
    const minuteTotals = snapshots
      .slice(1)
      .map((s, i) => total(difference(snapshots[i] as RequestCounts, s), isOperatorCall));
    const operatorPerMin = total(steady, isOperatorCall) / steadyMinutes;
    const watchesPerMin = total(steady, (k) => isOperatorRequest(k) && isWatch(k)) / steadyMinutes;
    const othersPerMin = total(steady, (k) => !isOperatorRequest(k) && !isWatch(k)) / steadyMinutes;

    // 4. Schedule lag.
    const lagSet = allPolicies(l).filter((_, i) => i % l.policiesPerNamespace < lagPolicies / namespaces);
    const backups = await watchBackups(kc);
    const lagStart = { counts: await requestCounts(kc), at: Date.now() };
    const anchor = new Date(Math.ceil((Date.now() + 40_000) / MINUTE) * MINUTE);
    t = performance.now();
    await makeEveryMinute(kc, lagSet, anchor, concurrency);
    log(
      `patched ${lagSet.length} policies to run every minute from ${anchor.toISOString()} (${((performance.now() - t) / 1000).toFixed(1)} s)`,
    );
    const slots = Array.from({ length: lagSlots }, (_, i) => anchor.getTime() + i * MINUTE);
    const waitUntil = (slots.at(-1) as number) + 30_000;
    await sleep(Math.max(0, waitUntil - Date.now()));
    await backups.stop();
    const lagCounts = difference(lagStart.counts, await requestCounts(kc));
    const lagPhasePerMin = total(lagCounts, isOperatorCall) / ((Date.now() - lagStart.at) / MINUTE);
    stillRunning();
    const end = sampleProcess(pid);
    const inSlots = backups.seen.filter((b) => slots.includes(b.scheduledTime.getTime()));
    const seenLags = inSlots.map((b) => b.seen.getTime() - b.scheduledTime.getTime()).sort((a, b) => a - b);
    const createdLags = inSlots.map((b) => b.created.getTime() - b.scheduledTime.getTime()).sort((a, b) => a - b);
    const expected = lagSet.length * lagSlots;
    const missing = expected - inSlots.length;
    // A Backup that did not appear within 30 s counts as later than every one that did.
    const lagSamples = [...seenLags, ...Array.from({ length: missing }, () => Number.POSITIVE_INFINITY)];
    const p99 = percentile(lagSamples, 0.99) / 1000;
    log(`lag: ${inSlots.length}/${expected} Backups, p50 ${percentile(lagSamples, 0.5)} ms, p99 ${p99 * 1000} ms`);

    // SIGTERM and a minute's grace (the harness would SIGKILL after 10 s, before a CPU profile is written).
    stopping = true;
    t = performance.now();
    process.kill(pid, 'SIGTERM');
    const stoppedS = (await Promise.race([operator.exited.then(() => true), sleep(MINUTE, false)]))
      ? (performance.now() - t) / 1000
      : Number.NaN;
    await operator.stop();
    log(
      `operator stopped ${Number.isNaN(stoppedS) ? 'only by SIGKILL after 60 s' : `${stoppedS.toFixed(1)} s after SIGTERM`}`,
    );
    // 5. A restart against a warm API server, as a rollout or a leader change meets it: until /readyz
    // (the informer caches synced), and the restarted process's peak RSS by then.
    t = performance.now();
    const restarted = spawnOperator([], join(work.path, 'operator-restart.log'));
    operator = restarted;
    const readyS = await untilReady(healthPort, restarted, syncTimeoutMinutes * MINUTE).then(
      () => (performance.now() - t) / 1000,
    );
    const atReady = sampleProcess(restarted.child.pid as number);
    await restarted.stop();
    log(
      `restarted operator ready ${readyS.toFixed(1)} s after its spawn; peak RSS ${atReady.peakRssMiB.toFixed(0)} MiB`,
    );

    const reconcileErrors = readFileSync(operatorLog, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"reconcile-error"'));
    let profile: ProfileSummary | undefined;
    if (values.profile)
      profile = await summarizeProfile(profileDir, 15).catch((error: unknown) => {
        log(`WARNING: no CPU profile: ${(error as Error).message}`);
        return undefined;
      });

    const peak = Math.max(afterSync.peakRssMiB, end.peakRssMiB);
    const targets: Target[] = [
      {
        what: `Start → all ${policies} policies reconciled`,
        value: `${(syncMs / 1000).toFixed(1)} s`,
        target: `< ${TARGET.syncS} s`,
        met: syncMs / 1000 < TARGET.syncS,
      },
      {
        what: 'Operator peak RSS (VmHWM) over the run',
        value: `${peak.toFixed(0)} MiB (${afterSync.peakRssMiB.toFixed(0)} MiB by the end of the sync)`,
        target: memory ? `< its memory limit, ${memory.limitMiB} MiB` : `< ${TARGET.rssMiB} MiB`,
        met: peak < (memory?.limitMiB ?? TARGET.rssMiB),
      },
      {
        what: `Restart against a warm API server (a rollout, a leader change) → ready (caches synced)`,
        value: `${readyS.toFixed(1)} s, peak RSS ${atReady.peakRssMiB.toFixed(0)} MiB`,
        target: `< ${TARGET.syncS} s`,
        met: readyS < TARGET.syncS,
      },
      {
        what: `Steady-state operator requests per minute (watches aside), ${steadyMinutes} min, nothing due`,
        value: operatorPerMin.toFixed(1),
        target: `near zero (≤ ${TARGET.steadyPerMin})`,
        met: operatorPerMin <= TARGET.steadyPerMin,
      },
      {
        what: `p99 schedule lag (Backup seen − scheduledTime), ${expected} runs`,
        value: Number.isFinite(p99) ? `${p99.toFixed(2)} s` : '> 30 s',
        target: `< ${TARGET.lagP99S} s`,
        met: p99 < TARGET.lagP99S,
      },
      {
        what: `\`/metrics\` scrape with ${policies} policies (${scrapes} scrapes in a row, after the sync)`,
        value: `p50 ${scrapeP50.toFixed(0)} ms, max ${scrapeMax.toFixed(0)} ms; body ${(scraped.bytes / 1024).toFixed(0)} KiB (gzip ${(scraped.gzipBytes / 1024).toFixed(0)} KiB), ${scraped.samples} samples`,
        target: `< ${TARGET.scrapeMs} ms`,
        met: scrapeMax < TARGET.scrapeMs,
      },
    ];
    const report: OperatorReport = {
      command: commandLine,
      date,
      durationMin: (Date.now() - started) / MINUTE,
      machine: description,
      setup: [
        `${policies} BackupPolicies in ${namespaces} namespaces (${policies / namespaces} each), each namespace with two BackupRepositories, primary and replica (their status written as after a successful probe Job: initialised, checked just now); created with ${concurrency} requests in flight in ${createS.toFixed(1)} s, before the operator starts.`,
        'Each policy: a PostgreSQL source and a volume source, full backup by cron `0 2 1 1 *` (UTC; nothing due during the run), a replica, RPO objective, retention (maxAge 60d: keeps the whole history), daily reports kept 2 days (the history comes without the Final reports an operator running all along would have written; with the default 14 days a first start writes every missing one, which is not the steady state) and allowedRegions — every decision path but creating a Backup runs.',
        `History: ${backupCount} Backups (${backupsPerPolicy} per policy, alternating between its two sources, one run per source every 8 h, the first of each day a full), created before the operator starts; 1 in 8 of the last day's runs Failed (older failures would have been removed by retention), the others Succeeded with the status the Backup controller writes (times, bytes, snapshot and chain ids, primary and replica entries, record counts for ${HISTORY_SOURCES.map((s) => `${s.objects} ${s.name === 'shop' ? 'tables' : 'directories'}`).join(' or ')}). How: through the API server (a create, then a /status replace) the history ran at ~22 Backups/s on this machine (2.5 h for 200,000), so one Backup of each shape (source × Succeeded/Failed) is created through the API server and the whole history is then written straight into etcd as the API server stores it (bench/operator/etcd.ts: sorted-key JSON at /registry/tidemark.dev/backups/<namespace>/<name>, with the witness's managedFields; each Backup created at its slot); the run stops unless each witness's bytes in etcd equal what the seeding builds for it, one seeded Backup of each shape read back through the API server equals what was stored, and a LIST counts all ${backupCount}. ${historyS.toFixed(0)} s (${(backupCount / historyS).toFixed(0)} Backups/s, ${backupConcurrency} transactions of 100 puts in flight). etcd db size afterwards (etcd's status): ${(etcdDb.bytes / 1024 ** 2).toFixed(0)} MiB, ${(etcdDb.inUseBytes / 1024 ** 2).toFixed(0)} MiB in use. The API server is then restarted (ready again in ${restartS.toFixed(0)} s): its watch cache would otherwise replay the seeded writes one event at a time, throttled by its slowest watcher (the controller manager's), and stay behind etcd for longer than the run; restarted, it starts from a LIST of etcd, as an API server over a long-lived history does.`,
        `\`tidemark operator\` runs as its own process (no leader election), started after the objects exist; times are from its spawn, as seen by a watch in the benchmark process. ${memory ? `It runs in a memory cgroup limited to ${memory.limitMiB} MiB, as a container with the chart's resources.limits.memory and the Deployment's NODE_OPTIONS, \`${OPERATOR_NODE_OPTIONS}\` (Node sizes its heap from that limit; OOM kills in the cgroup over the run: ${memory.oomKills()}).` : 'It runs without a memory limit.'}${values.profile ? ' It ran under `node --cpu-prof` (sampling costs a little CPU and memory).' : ''}`,
        `Lag: ${lagSet.length} of the policies are patched to \`every: 1m\` from the next whole minute; their source selects no PVC, so each Backup fails at once without a Job and the next slot can run. ${lagSlots} slots are measured.`,
      ],
      targets,
      details: [
        `/metrics: every scrape computes the object metrics from the informer caches (no API request); ${scraped.sourceSeries} per-source series (tidemark_source_rpo_seconds), ${scraped.samples} samples in all including the process metrics; scrape times ${scraped.timesMs.map((t) => t.toFixed(0)).join(', ')} ms.`,
        `First policy reconciled ${(firstMs / 1000).toFixed(1)} s after the spawn (Node start-up, module loading, the informers' initial LISTs); operator CPU during the sync ${afterSync.cpuS.toFixed(1)} s.`,
        `RSS right after the sync ${afterSync.rssMiB.toFixed(0)} MiB; after the steady-state window ${afterSteady.rssMiB.toFixed(0)} MiB; peak over the whole run ${peak.toFixed(0)} MiB.`,
        `Start-up catch-up after the sync: ${catchUpRequests} operator requests over ${catchUpMinutes} min (until a minute with ≤ ${TARGET.steadyPerMin}${catchUpMinutes >= SETTLE_MINUTES ? `; not reached within ${SETTLE_MINUTES} min` : ''}), not counted in the steady state.`,
        `Steady state: operator CPU ${(afterSteady.cpuS - cpuBeforeSteady).toFixed(1)} s over ${steadyMinutes} min; ${watchesPerMin.toFixed(1)} watch requests per minute (re-established watches); everything else the API server served (its own loopback, the controller manager) ${othersPerMin.toFixed(1)} per minute.`,
        `Lag over ${inSlots.length} of ${expected} expected Backups${missing ? ` (${missing} did not appear within 30 s of their slot)` : ''}: p50 ${(percentile(lagSamples, 0.5) / 1000).toFixed(2)} s, p90 ${(percentile(lagSamples, 0.9) / 1000).toFixed(2)} s, p99 ${p99.toFixed(2)} s, max ${(percentile(lagSamples, 1) / 1000).toFixed(2)} s. By creationTimestamp (whole seconds, rounded down): p99 ${(percentile(createdLags, 0.99) / 1000).toFixed(0)} s, max ${(percentile(createdLags, 1) / 1000).toFixed(0)} s.`,
        `Reconcile errors in the operator log: ${reconcileErrors.length}. Shutdown: ${Number.isNaN(stoppedS) ? 'the operator did not exit within 60 s of SIGTERM' : `exited ${stoppedS.toFixed(1)} s after SIGTERM`}.`,
      ],
      steadyRequests: operatorOnly(steady),
      steadyMinutes,
      perMinute: minuteTotals,
      limits: limitsOf({
        policies,
        steady: operatorOnly(steady),
        steadyMinutes,
        steadyCpuS: afterSteady.cpuS - cpuBeforeSteady,
        sync: { cpuS: afterSync.cpuS, wallS: syncMs / 1000 },
        lagPhasePerMin,
        missed: {
          sync: !targets[0]?.met,
          rss: !targets[1]?.met,
          steady: !targets[3]?.met,
          lag: !targets[4]?.met,
          scrape: !targets[5]?.met,
        },
        rssMiB: {
          afterSync: afterSync.peakRssMiB,
          afterSteady: afterSteady.rssMiB,
          peak,
          cliAlone: cliAlone.maxRssMiB,
        },
        lagP50S: percentile(lagSamples, 0.5) / 1000,
        ...(profile ? { profile } : {}),
      }),
      ...(profile ? { profile } : {}),
    };
    await writeSections(values.out as string, { operator: renderSection(report) });
    log(`wrote the Operator section of ${values.out}`);
  } finally {
    await operator?.stop();
    memory?.remove();
    await cluster.stop();
    if (values.keep) log(`kept ${work.path}`);
    else work.remove();
  }
}

await main();
