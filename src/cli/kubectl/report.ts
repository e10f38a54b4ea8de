import { formatDuration } from '../../api/duration.ts';
import type { BackupReport } from '../../api/kinds.ts';
import { formatBytes } from '../../units.ts';
import { formatTable } from './output.ts';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Whether `text` is a date as reports name their day (YYYY-MM-DD). */
export const isReportDate = (text: string) => DATE.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`));

/**
 * The reports to show: those of `date`, else each policy's newest; of one policy, or of all.
 * Sorted by policy, then date.
 */
export function pickReports(reports: BackupReport[], policy?: string, date?: string): BackupReport[] {
  const mine = reports.filter((r) => policy === undefined || r.spec.policy === policy);
  const newest = new Map<string, BackupReport>();
  for (const r of mine) {
    const key = `${r.metadata.namespace}/${r.spec.policy}`;
    if ((newest.get(key)?.spec.date ?? '') < r.spec.date) newest.set(key, r);
  }
  const chosen = date ? mine.filter((r) => r.spec.date === date) : [...newest.values()];
  return chosen.sort(
    (a, b) =>
      `${a.metadata.namespace}/${a.spec.policy}`.localeCompare(`${b.metadata.namespace}/${b.spec.policy}`) ||
      a.spec.date.localeCompare(b.spec.date),
  );
}

const bytes = (n: number | undefined) => (n === undefined ? '-' : formatBytes(n));
const signed = (n: number | undefined) => (n === undefined ? '-' : n > 0 ? `+${n}` : String(n));
const clock = (time: string | undefined) => (time ? `${time.slice(11, 19)}Z` : '-');

/** One row per source of each report: what `kubectl tidemark report` prints for several policies. */
export function summaryTable(reports: BackupReport[], withNamespace = false): string {
  const header = [
    'POLICY',
    'DATE',
    'SOURCE',
    'RUNS',
    'SUCCEEDED',
    'FAILED',
    'RUNNING',
    'READ',
    'UPLOADED',
    'RECORDS',
    'NOT BACKED UP',
  ];
  const rows = reports.flatMap((r) =>
    (r.status?.sources ?? []).map((s) => [
      ...(withNamespace ? [r.metadata.namespace ?? ''] : []),
      r.spec.policy,
      r.spec.date,
      s.name,
      String(s.runs),
      String(s.succeeded),
      String(s.failed),
      String(s.running),
      bytes(s.logicalBytes),
      bytes(s.uploadedBytes),
      s.records === undefined ? '-' : String(s.records),
      String((s.skipped?.length ?? 0) + (s.skippedOmitted ?? 0)),
    ]),
  );
  return formatTable([[...(withNamespace ? ['NAMESPACE'] : []), ...header], ...rows]);
}

/** One report in full: per source, the runs, the record counts per object and what was not backed up. */
export function reportText(report: BackupReport): string {
  const s = report.status;
  const title =
    `Report ${report.metadata.name}: policy ${report.spec.policy}, ${report.spec.date} (${report.spec.timeZone}), ` +
    `${s?.phase ?? 'not written yet'}${s?.updateTime ? `, updated ${s.updateTime}` : ''}\n` +
    `${s?.runs ?? 0} runs: ${s?.succeeded ?? 0} succeeded, ${s?.failed ?? 0} failed, ${s?.running ?? 0} running; ` +
    `read ${bytes(s?.logicalBytes)}, uploaded ${bytes(s?.uploadedBytes)}\n`;
  const sections = [title];
  const runs = s?.backups ?? [];
  if (runs.length) {
    const duration = (start?: string, end?: string) =>
      start && end ? formatDuration(Math.max(0, Date.parse(end) - Date.parse(start))) : '-';
    sections.push(
      formatTable([
        ['BACKUP', 'SOURCE', 'TYPE', 'PHASE', 'STARTED', 'DURATION', 'READ', 'UPLOADED', 'RECORDS', 'ERROR'],
        ...runs.map((r) => [
          `${r.backup}${r.removed ? ' (removed)' : ''}`,
          r.source,
          r.type ?? '-',
          r.phase,
          clock(r.startTime),
          duration(r.startTime, r.completionTime),
          bytes(r.logicalBytes),
          bytes(r.uploadedBytes),
          r.records === undefined ? '-' : String(r.records),
          r.error ? (r.error.split('\n')[0] ?? '') : '',
        ]),
      ]) + (s?.runsOmitted ? `(${s.runsOmitted} more runs not listed)\n` : ''),
    );
  }
  const sources = s?.sources ?? [];
  const objects = sources.flatMap((src) =>
    (src.objects ?? []).map((o) => [src.name, o.name, String(o.records), signed(o.change)]),
  );
  if (objects.length) {
    const omitted = sources.reduce((n, src) => n + (src.objectsOmitted ?? 0), 0);
    sections.push(
      formatTable([['SOURCE', 'OBJECT', 'RECORDS', 'CHANGE'], ...objects]) +
        (omitted ? `(${omitted} more objects not listed)\n` : ''),
    );
  }
  const skipped = sources.flatMap((src) => (src.skipped ?? []).map((x) => [src.name, x.name, x.reason]));
  const skippedOmitted = sources.reduce((n, src) => n + (src.skippedOmitted ?? 0), 0);
  if (skipped.length)
    sections.push(
      formatTable([['SOURCE', 'NOT BACKED UP', 'REASON'], ...skipped]) +
        (skippedOmitted ? `(${skippedOmitted} more not listed)\n` : ''),
    );
  else sections.push('No object was skipped.\n');
  return sections.join('\n');
}
