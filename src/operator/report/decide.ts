import { createHash } from 'node:crypto';
import type { BackupStatus } from '../../api/backup.ts';
import {
  type BackupReportStatus,
  REPORT_LIMITS,
  type ReportObjectCount,
  type ReportRun,
  type SourceReport,
} from '../../api/backupreport.ts';
import { API_GROUP_VERSION } from '../../api/common.ts';
import { DAY_MS } from '../../api/duration.ts';
import type { Backup, BackupPolicy, BackupReport } from '../../api/kinds.ts';
import { localDate, localDayOf, timeZoneExists } from '../backuppolicy/schedule.ts';
import { LABELS } from '../jobs/labels.ts';
import { labelValue } from '../runtime/labels.ts';
import { controllerReference } from '../runtime/owner.ts';
import { canonicalJson } from '../runtime/resources.ts';
import { instant, newestFirst } from '../runtime/time.ts';

export const DEFAULT_KEEP_DAYS = 14;
/** On every BackupReport: Open or Final, so the operator caches only the Open ones. */
export const REPORT_PHASE_LABEL = 'tidemark.dev/report-phase';
const MAX_NAME = 253;

export interface ReportObserved {
  policy: BackupPolicy;
  /** The policy's Backups, as they exist now. */
  backups: Backup[];
  /** The policy's BackupReports: the Open ones in full, Final ones at least as `reportStub` keeps them. */
  reports: BackupReport[];
  now: Date;
  /**
   * A Backup's record counts. Default: its status.objects; the operator's cache leaves them out, so
   * the controller reads those this asks for from the API server (see report/controller.ts).
   */
  objectsOf?: (backup: Backup) => BackupStatus['objects'];
  /** A Backup's total record count. Default: the sum of its status.objects (the cache keeps the totals). */
  recordsOf?: (backup: Backup) => number | undefined;
}

export interface ReportDecision {
  /** Reports to create (if missing) and whose status to make this. */
  write: BackupReport[];
  /** Names of reports older than the policy keeps. */
  delete: string[];
  /** By report name, for each report that became Final: the day's summary, an Event on the policy. */
  events: Map<string, ReportEvent>;
  /** The daily tick: just after the current day ends, to open the next report and finish this one. */
  requeueAfterMs: number;
}

export interface ReportEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

interface Day {
  date: string;
  start: number;
  end: number;
}

/** `<policy>-<yyyy-mm-dd>`; a policy name too long for that is shortened and made unique by its hash. */
export function reportName(policy: string, date: string): string {
  const tail = `-${date}`;
  if (policy.length + tail.length <= MAX_NAME) return `${policy}${tail}`;
  const hash = `-${createHash('sha256').update(policy).digest('hex').slice(0, 8)}`;
  const head = policy.slice(0, MAX_NAME - tail.length - hash.length).replace(/[-.]+$/, '');
  return `${head}${hash}${tail}`;
}

/** The time zone reports of `policy` count days in: its schedule's, UTC when that one is unknown. */
export function reportTimeZone(policy: BackupPolicy): string {
  const zone = policy.spec.schedule.timeZone ?? 'UTC';
  return timeZoneExists(zone) ? zone : 'UTC';
}

/** Today's date in the policy's report time zone. */
export const reportDate = (policy: BackupPolicy, now: Date) => localDate(now.getTime(), reportTimeZone(policy));

/**
 * What the operator keeps in memory of a Final report: enough to leave it alone, delete it when it
 * is too old and compare the next day's counts with it; not its list of runs.
 */
export function reportStub(report: BackupReport): BackupReport {
  const { backups: _runs, ...status } = report.status ?? { runs: 0, succeeded: 0, failed: 0, running: 0 };
  return {
    apiVersion: report.apiVersion,
    kind: report.kind,
    metadata: { name: report.metadata.name ?? '', namespace: report.metadata.namespace ?? '' },
    spec: report.spec,
    status: { ...status, phase: 'Final', sources: (status.sources ?? []).map(({ skipped: _s, ...source }) => source) },
  };
}

/** A calendar date `days` days from `date` (both YYYY-MM-DD; calendar days, whatever the zone). */
const addDays = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);

/** When a run counts: it belongs to the day it started (it was created, while it waits). */
const runTime = (b: Backup) => instant(b.status?.startTime) ?? instant(b.metadata.creationTimestamp);

const ended = (phase: ReportRun['phase']) => phase === 'Succeeded' || phase === 'Failed';

/**
 * The daily reports of one policy, pure: one BackupReport per day in the policy's time zone, built
 * from Backup status only (the operator never reads the repository). A report is written while its
 * day runs and until every run that started in it has ended, then it is Final and left alone. A run
 * whose Backup is gone (retention) stays listed as the report last saw it. Reports older than
 * `spec.reports.keepDays` are deleted.
 */
export function decideReports(observed: ReportObserved): ReportDecision {
  const { policy, now } = observed;
  const timeZone = reportTimeZone(policy);
  const keepDays = policy.spec.reports?.keepDays ?? DEFAULT_KEEP_DAYS;
  const today = localDayOf(localDate(now.getTime(), timeZone), timeZone);
  const oldest = addDays(today.date, 1 - keepDays);
  const kept = (date: string) => date >= oldest && date <= today.date;
  const byDate = new Map(observed.reports.map((r) => [r.spec.date, r]));
  const runsByDate = new Map<string, Backup[]>();
  for (const backup of observed.backups) {
    const at = runTime(backup);
    if (at === undefined) continue;
    const date = at >= today.start && at < today.end ? today.date : localDate(at, timeZone);
    if (kept(date)) runsByDate.set(date, [...(runsByDate.get(date) ?? []), backup]);
  }
  const dates = [
    ...new Set([today.date, ...runsByDate.keys(), ...observed.reports.map((r) => r.spec.date).filter(kept)]),
  ].sort();
  const decision: ReportDecision = {
    write: [],
    delete: observed.reports.filter((r) => r.spec.date < oldest).map((r) => r.metadata.name ?? ''),
    events: new Map(),
    requeueAfterMs: Math.max(1000, today.end - now.getTime() + 1000),
  };
  for (const date of dates) {
    const existing = byDate.get(date);
    if (existing?.status?.phase === 'Final') continue;
    const day = date === today.date ? today : localDayOf(date, timeZone);
    const previous = byDate.get(addDays(date, -1));
    const runs = runsByDate.get(date) ?? [];
    const objectsOf = observed.objectsOf ?? ((b: Backup) => b.status?.objects);
    const recordsOf = observed.recordsOf ?? recordTotal;
    const report = buildReport({
      policy,
      timeZone,
      day,
      runs,
      backups: observed.backups,
      existing,
      previous,
      now,
      objectsOf,
      recordsOf,
    });
    decision.write.push(report);
    if (report.status?.phase === 'Final') decision.events.set(report.metadata.name ?? '', finalEvent(report));
  }
  return decision;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** The day in one line, a Warning when a run failed or an object could not be backed up. */
function finalEvent(report: BackupReport): ReportEvent {
  const s = report.status;
  const skipped = (s?.sources ?? []).reduce((n, x) => n + (x.skipped?.length ?? 0) + (x.skippedOmitted ?? 0), 0);
  const bad = (s?.failed ?? 0) > 0 || skipped > 0;
  return {
    type: bad ? 'Warning' : 'Normal',
    reason: 'DailyReport',
    message: `${report.spec.date} (${report.spec.timeZone}): ${count(s?.runs ?? 0, 'run')}, ${s?.succeeded ?? 0} succeeded, ${s?.failed ?? 0} failed${skipped ? `, ${count(skipped, 'object')} not backed up` : ''}; see BackupReport ${report.metadata.name}`,
  };
}

interface BuildInput {
  policy: BackupPolicy;
  timeZone: string;
  day: Day;
  /** The Backups that started this day. */
  runs: Backup[];
  /** Every Backup of the policy (the baseline of the changes may be older than the day). */
  backups: Backup[];
  existing: BackupReport | undefined;
  previous: BackupReport | undefined;
  now: Date;
  objectsOf: (backup: Backup) => BackupStatus['objects'];
  recordsOf: (backup: Backup) => number | undefined;
}

function buildReport(input: BuildInput): BackupReport {
  const { policy, timeZone, day, existing, now } = input;
  const policyName = policy.metadata.name ?? '';
  const alive = new Set(input.backups.map((b) => b.metadata.name));
  const seen = (existing?.status?.backups ?? []).filter((r) => !alive.has(r.backup)).map(removedRun);
  const runs = [...input.runs.map((b) => reportRun(b, input.recordsOf(b))), ...seen].sort(
    (a, b) => (instant(a.startTime) ?? 0) - (instant(b.startTime) ?? 0) || a.backup.localeCompare(b.backup),
  );
  const sourceNames = [...new Set([...policy.spec.sources.map((s) => s.name), ...runs.map((r) => r.source)])];
  const sources = boundSources(
    sourceNames.map((name) =>
      sourceReport(
        name,
        runs.filter((r) => r.source === name),
        input,
      ),
    ),
  );
  const { kept, omitted } = boundRuns(runs);
  const open = now.getTime() < day.end || runs.some((r) => !ended(r.phase));
  const status: BackupReportStatus = {
    phase: open ? 'Open' : 'Final',
    start: new Date(day.start).toISOString(),
    end: new Date(day.end).toISOString(),
    ...totals(runs),
    sources,
    backups: kept,
    ...(omitted ? { runsOmitted: omitted } : {}),
  };
  const previousUpdate = existing?.status?.updateTime;
  const unchanged =
    previousUpdate && canonicalJson({ ...existing.status, updateTime: undefined }) === canonicalJson(status);
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'BackupReport',
    metadata: {
      name: existing?.metadata.name ?? reportName(policyName, day.date),
      namespace: policy.metadata.namespace ?? '',
      labels: { [LABELS.policy]: labelValue(policyName), [REPORT_PHASE_LABEL]: status.phase ?? 'Open' },
      ownerReferences: [controllerReference(policy)],
    },
    spec: existing?.spec ?? { policy: policyName, date: day.date, timeZone },
    status: { ...status, updateTime: unchanged ? previousUpdate : now.toISOString() },
  };
}

/** A run whose Backup is gone, as last seen; one deleted before it ended never will: it failed. */
function removedRun(run: ReportRun): ReportRun {
  if (ended(run.phase)) return { ...run, removed: true };
  return { ...run, removed: true, phase: 'Failed', error: 'the Backup was deleted before its run ended' };
}

const shorten = (text: string) =>
  text.length <= REPORT_LIMITS.reason ? text : `${text.slice(0, REPORT_LIMITS.reason - 1)}…`;

/** The records a Backup counted, all objects together; undefined when it has no counts. */
export const recordTotal = (backup: Backup) => backup.status?.objects?.reduce((sum, o) => sum + o.records, 0);

function reportRun(backup: Backup, records: number | undefined): ReportRun {
  const s = backup.status ?? {};
  const phase = s.phase ?? 'Pending';
  const startTime = s.startTime ?? backup.metadata.creationTimestamp;
  return {
    backup: backup.metadata.name ?? '',
    source: backup.spec.source,
    ...(backup.spec.type ? { type: backup.spec.type } : {}),
    phase,
    ...(startTime ? { startTime: new Date(instant(startTime) ?? 0).toISOString() } : {}),
    ...(s.completionTime ? { completionTime: s.completionTime } : {}),
    ...(s.logicalBytes !== undefined ? { logicalBytes: s.logicalBytes } : {}),
    ...(s.storedBytes !== undefined ? { storedBytes: s.storedBytes } : {}),
    ...(s.uploadedBytes !== undefined ? { uploadedBytes: s.uploadedBytes } : {}),
    ...(records !== undefined ? { records } : {}),
    ...(s.skipped?.length ? { skipped: s.skipped.length } : {}),
    ...(phase === 'Failed' ? { error: shorten(s.error ?? 'failed without a message') } : {}),
  };
}

type Counts = Pick<
  BackupReportStatus,
  'runs' | 'succeeded' | 'failed' | 'running' | 'logicalBytes' | 'storedBytes' | 'uploadedBytes'
>;

function totals(runs: ReportRun[]): Required<Counts> {
  const succeeded = runs.filter((r) => r.phase === 'Succeeded');
  const sum = (field: 'logicalBytes' | 'storedBytes' | 'uploadedBytes') =>
    succeeded.reduce((total, r) => total + (r[field] ?? 0), 0);
  return {
    runs: runs.length,
    succeeded: succeeded.length,
    failed: runs.filter((r) => r.phase === 'Failed').length,
    running: runs.filter((r) => !ended(r.phase)).length,
    logicalBytes: sum('logicalBytes'),
    storedBytes: sum('storedBytes'),
    uploadedBytes: sum('uploadedBytes'),
  };
}

function sourceReport(name: string, runs: ReportRun[], input: BuildInput): SourceReport {
  const earlier = input.existing?.status?.sources?.find((s) => s.name === name);
  const [lastRun] = newestFirst(
    runs.filter((r) => r.phase === 'Succeeded'),
    (r) => r.completionTime,
  );
  const lastBackup = lastRun && input.backups.find((b) => b.metadata.name === lastRun.backup);
  const report: SourceReport = { name, ...totals(runs) };
  if (lastRun) {
    report.lastSuccessfulBackup = lastRun.backup;
    if (lastRun.completionTime) report.lastSuccessTime = lastRun.completionTime;
  }
  const lastObjects = lastBackup && input.objectsOf(lastBackup);
  if (lastObjects) {
    const baseline = baselineOf(name, input);
    const objects: ReportObjectCount[] = lastObjects.map((o) => {
      const before = baseline?.counts.get(o.name);
      return { name: o.name, records: o.records, ...(before !== undefined ? { change: o.records - before } : {}) };
    });
    report.objectCount = objects.length;
    report.records = objects.reduce((sum, o) => sum + o.records, 0);
    report.objects = objects;
    if (baseline) report.comparedWith = baseline.backup;
  } else if (lastRun && earlier?.lastSuccessfulBackup === lastRun.backup) {
    // Its Backup is gone: the counts stay as the report saw them.
    for (const field of ['objectCount', 'records', 'objects', 'objectsOmitted', 'comparedWith'] as const)
      if (earlier[field] !== undefined) Object.assign(report, { [field]: earlier[field] });
  }
  const skipped = new Map((earlier?.skipped ?? []).map((s) => [s.name, s.reason]));
  for (const run of input.runs.filter((b) => b.spec.source === name))
    for (const s of run.status?.skipped ?? []) skipped.set(s.name, shorten(s.reason));
  if (skipped.size) report.skipped = [...skipped].map(([n, reason]) => ({ name: n, reason }));
  return report;
}

/**
 * What the day's counts are compared with: the newest successful Backup of the source that completed
 * before the day started, else (it was removed) the newest success in the report of the day before.
 */
function baselineOf(source: string, input: BuildInput): { backup: string; counts: Map<string, number> } | undefined {
  const [before] = newestFirst(
    input.backups.filter(
      (b) =>
        b.spec.source === source &&
        b.status?.phase === 'Succeeded' &&
        (instant(b.status.completionTime) ?? 0) < input.day.start,
    ),
    (b) => b.status?.completionTime,
  );
  const beforeObjects = before && input.objectsOf(before);
  if (beforeObjects)
    return {
      backup: before.metadata.name ?? '',
      counts: new Map(beforeObjects.map((o) => [o.name, o.records])),
    };
  const earlier = input.previous?.status?.sources?.find((s) => s.name === source);
  if (!earlier?.objects || !earlier.lastSuccessfulBackup) return undefined;
  return { backup: earlier.lastSuccessfulBackup, counts: new Map(earlier.objects.map((o) => [o.name, o.records])) };
}

/**
 * Cuts the object and skipped lists to the report's budgets, each source a fair share (a source with
 * fewer leaves the rest to the others). Objects whose count changed are kept first, then the largest.
 */
function boundSources(sources: SourceReport[]): SourceReport[] {
  const objects = shares(
    sources.map((s) => s.objects?.length ?? 0),
    REPORT_LIMITS.objects,
  );
  const skipped = shares(
    sources.map((s) => s.skipped?.length ?? 0),
    REPORT_LIMITS.skipped,
  );
  return sources.map((source, i) => {
    const out = { ...source };
    const keepObjects = objects[i] ?? 0;
    if (out.objects && out.objects.length > keepObjects) {
      const ranked = [...out.objects].sort(
        (a, b) => Math.abs(b.change ?? 0) - Math.abs(a.change ?? 0) || b.records - a.records,
      );
      out.objectsOmitted = (out.objectsOmitted ?? 0) + out.objects.length - keepObjects;
      out.objects = ranked.slice(0, keepObjects);
    }
    if (out.objects) out.objects = [...out.objects].sort((a, b) => a.name.localeCompare(b.name));
    const keepSkipped = skipped[i] ?? 0;
    if (out.skipped && out.skipped.length > keepSkipped) {
      out.skippedOmitted = out.skipped.length - keepSkipped;
      out.skipped = out.skipped.slice(0, keepSkipped);
    }
    if (out.skipped) out.skipped = [...out.skipped].sort((a, b) => a.name.localeCompare(b.name));
    if (out.objects?.length === 0) delete out.objects;
    if (out.skipped?.length === 0) delete out.skipped;
    return out;
  });
}

/** Water-filling: each of `wants` gets at most an equal share of what is left for it and those after it. */
export function shares(wants: number[], budget: number): number[] {
  const order = wants.map((want, i) => ({ want, i })).sort((a, b) => a.want - b.want);
  const out = new Array<number>(wants.length).fill(0);
  let left = budget;
  order.forEach(({ want, i }, k) => {
    const share = Math.min(want, Math.floor(left / (order.length - k)));
    out[i] = share;
    left -= share;
  });
  return out;
}

/** At most REPORT_LIMITS.runs runs, failures first, then the newest; listed oldest first. */
function boundRuns(runs: ReportRun[]): { kept: ReportRun[]; omitted: number } {
  if (runs.length <= REPORT_LIMITS.runs) return { kept: runs, omitted: 0 };
  const rank = (r: ReportRun) => (r.phase === 'Failed' ? 0 : 1);
  const chosen = new Set(
    [...runs]
      .reverse()
      .sort((a, b) => rank(a) - rank(b))
      .slice(0, REPORT_LIMITS.runs),
  );
  return { kept: runs.filter((r) => chosen.has(r)), omitted: runs.length - REPORT_LIMITS.runs };
}
