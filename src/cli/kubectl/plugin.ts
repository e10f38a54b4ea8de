import { type Command, Help } from 'commander';
import type { Backup, BackupPolicy, BackupReport, RestoreRequest } from '../../api/kinds.ts';
import { TidemarkError } from '../../errors.ts';
import { formatData, formatTable, OUTPUT_FORMATS, type OutputFormat, outputFormat } from './output.ts';

interface GlobalFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  output?: string;
}

/**
 * `tidemark kubectl …`, which `kubectl tidemark …` runs (bin/kubectl-tidemark on PATH). kubectl hands a
 * plugin its arguments untouched, so -n, --context and --kubeconfig are parsed here, after the subcommand too.
 */
export function registerKubectlCommands(program: Command): void {
  const plugin = program
    .command('kubectl')
    .description('the kubectl plugin: `kubectl tidemark status|report|backup now|restore|approve|export|logs`')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('-n, --namespace <namespace>', "namespace (default: the context's)")
    .option('-o, --output <format>', `output format: ${OUTPUT_FORMATS.filter((f) => f !== 'table').join(', ')}`)
    // Help names the commands as people type them (subcommands inherit this).
    .configureHelp({
      commandUsage: (c) => new Help().commandUsage(c).replace(/^tidemark kubectl/, 'kubectl tidemark'),
    });

  const context = async (command: Command) => {
    const flags = command.optsWithGlobals() as GlobalFlags;
    const format = outputFormat(flags.output);
    const { Connection } = await import('./connection.ts');
    return { connection: new Connection(flags), format };
  };

  plugin
    .command('status')
    .description('per policy and source: last success, RPO against its target, replica lag, next run, drills')
    .argument('[policy]', 'one BackupPolicy (default: all in the namespace)')
    .option('-A, --all-namespaces', 'every namespace')
    .action(async (name: string | undefined, options: { allNamespaces?: boolean }, command: Command) => {
      const { connection, format } = await context(command);
      const { statusRows, statusTable } = await import('./status.ts');
      const policies = name
        ? [await connection.get<BackupPolicy>('BackupPolicy', name)]
        : await connection.list<BackupPolicy>('BackupPolicy', options.allNamespaces);
      const now = new Date();
      const rows = policies
        .sort((a, b) =>
          `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`),
        )
        .flatMap((p) => statusRows(p, now));
      if (format !== 'table') return write(formatData(rows, format));
      if (rows.length === 0) {
        process.stderr.write(`No BackupPolicies found${options.allNamespaces ? '' : ` in ${connection.namespace}`}.\n`);
        return;
      }
      write(formatTable(statusTable(rows, now, options.allNamespaces === true)));
    });

  plugin
    .command('report')
    .description(
      'the daily report (BackupReport): runs, failures, bytes, record counts per object, what was not backed up',
    )
    .argument('[policy]', 'one BackupPolicy, shown in full (default: a summary of all in the namespace)')
    .option('--date <YYYY-MM-DD>', "the day, in the policy's time zone (default: the newest report)")
    .option('-A, --all-namespaces', 'every namespace')
    .action(async (name: string | undefined, options: { date?: string; allNamespaces?: boolean }, command: Command) => {
      const { connection, format } = await context(command);
      const { isReportDate, pickReports, reportText, summaryTable } = await import('./report.ts');
      if (options.date !== undefined && !isReportDate(options.date))
        throw new TidemarkError('InvalidArgument', `--date ${options.date}: use a date such as 2026-12-01`);
      if (name) await connection.get<BackupPolicy>('BackupPolicy', name);
      const all = await connection.list<BackupReport>('BackupReport', options.allNamespaces);
      const reports = pickReports(all, name, options.date);
      if (format !== 'table') return write(formatData(reports, format));
      if (reports.length === 0) {
        const where = options.allNamespaces ? '' : ` in ${connection.namespace}`;
        process.stderr.write(
          `No BackupReports${name ? ` of ${name}` : ''}${options.date ? ` for ${options.date}` : ''}${where}.\n`,
        );
        return;
      }
      write(name ? reports.map(reportText).join('\n') : summaryTable(reports, options.allNamespaces === true));
    });

  plugin
    .command('backup')
    .description('on-demand backups')
    .command('now')
    .description('back up a policy now: every source, or --source; as a scheduled run would, outside the schedule')
    .argument('<policy>', 'the BackupPolicy')
    .option('--source <name>', 'only this source')
    .option('--type <type>', 'full or incremental', 'full')
    .action(async (name: string, options: { source?: string; type: string }, command: Command) => {
      const { connection, format } = await context(command);
      if (options.type !== 'full' && options.type !== 'incremental')
        throw new TidemarkError('InvalidArgument', `--type ${options.type}: use full or incremental`);
      const { onDemandBackup, pickSources } = await import('./requests.ts');
      const policy = await connection.get<BackupPolicy>('BackupPolicy', name);
      const created: Backup[] = [];
      for (const source of pickSources(policy, options.source))
        created.push(await connection.create<Backup>('Backup', onDemandBackup(policy, source, options.type)));
      report(format, created, 'backup');
    });

  plugin
    .command('restore')
    .description(
      "create a RestoreRequest: a policy source's latest backup (or the latest before a time), or one Backup",
    )
    .option('--policy <name>', 'the BackupPolicy to restore from (with --source)')
    .option('--source <name>', 'its source')
    .option('--before <time>', 'point in time: the latest backup completed before it (RFC 3339)')
    .option('--backup <name>', 'restore this Backup instead')
    .option('--to-original', 'over the backed-up source itself (with --mode replace when it holds data)')
    .option('--to-postgres <secret/database>', 'into a PostgreSQL database, by connection Secret')
    .option('--to-mysql <secret/database>', 'into a MySQL/MariaDB database, by connection Secret')
    .option('--to-volume <claim>', 'into a PersistentVolumeClaim of the namespace')
    .option('--database <name>', 'which database of a multi-database backup')
    .option('--mode <mode>', 'refuse (a target holding data) or replace', 'refuse')
    .option('--script <name>', 'a post-restore script of the policy, by name')
    .option('--create-missing-roles', 'PostgreSQL: create roles the backup names that the target lacks')
    .action(async (options: import('./requests.ts').RestoreFlags, command: Command) => {
      const { connection, format } = await context(command);
      const { restoreRequest, pickSources } = await import('./requests.ts');
      restoreRequest(connection.namespace, options); // the flags first: a mistake is named before any API call
      // What it restores must exist now: a typo would otherwise wait as Pending forever.
      if (options.backup) await connection.get<Backup>('Backup', options.backup);
      else pickSources(await connection.get<BackupPolicy>('BackupPolicy', options.policy ?? ''), options.source);
      const request = restoreRequest(connection.namespace, options, (await connection.whoAmI()).user);
      report(format, [await connection.create<RestoreRequest>('RestoreRequest', request)], 'restorerequest');
    });

  plugin
    .command('approve')
    .description('add your approval to a RestoreRequest waiting for approval (four eyes)')
    .argument('<restorerequest>', 'the RestoreRequest')
    .option('--comment <text>', 'why you approve, kept in the request')
    .action(async (name: string, options: { comment?: string }, command: Command) => {
      const { connection, format } = await context(command);
      const { approvalPatch } = await import('./requests.ts');
      const [request, me] = await Promise.all([
        connection.get<RestoreRequest>('RestoreRequest', name),
        connection.whoAmI(),
      ]);
      if (request.spec.approvals?.some((a) => a.user === me.user))
        throw new TidemarkError('InvalidArgument', `${me.user} has already approved RestoreRequest ${name}`);
      const updated = await connection.jsonPatch<RestoreRequest>(
        'RestoreRequest',
        name,
        approvalPatch(request, me, options.comment),
      );
      report(format, [updated], 'restorerequest', 'approved');
    });

  plugin
    .command('export')
    .description(
      'export a Backup as a ZIP (a CSV per table, or the files) and print its download link (a BackupExport)',
    )
    .argument('<backup>', 'the Backup')
    .option('--expires-after <duration>', 'how long the link works (at most 7d on S3)', '7d')
    .option('--timeout <duration>', 'how long to wait for the export', '30m')
    .action(async (backup: string, options: { expiresAfter: string; timeout: string }, command: Command) => {
      const { connection, format } = await context(command);
      const { exportBackup } = await import('./export.ts');
      const { parseDuration } = await import('../../api/duration.ts');
      const { exp, link } = await exportBackup(
        connection,
        backup,
        options.expiresAfter,
        parseDuration(options.timeout),
      );
      if (format !== 'table') return write(formatData({ ...exp, ...(link ? { link } : {}) }, format));
      const status = exp.status ?? {};
      process.stderr.write(
        `backupexport.tidemark.dev/${exp.metadata.name} ready: ${status.size ?? ''}, until ${status.expiryTime}\n`,
      );
      if (link) write(`${link}\n`);
      else {
        process.stderr.write('a filesystem repository has no download link; the ZIP is in the repository volume at:\n');
        write(`${status.location}\n`);
      }
    });

  plugin
    .command('logs')
    .description("the agent's log of a Backup or a RestoreRequest (every pod of its Jobs)")
    .argument('<kind>', 'backup or restore')
    .argument('<name>', 'its name')
    .action(async (kind: string, name: string, _options: object, command: Command) => {
      const { connection } = await context(command);
      const { agentLogs } = await import('./logs.ts');
      write(await agentLogs(connection, kind, name));
    });
}

function write(text: string): void {
  process.stdout.write(text);
}

/** What was created or changed: kubectl's one line each, or the objects themselves. */
function report(format: OutputFormat, objects: { metadata?: { name?: string } }[], kind: string, verb = 'created') {
  if (format !== 'table') return write(formatData(objects.length === 1 ? objects[0] : objects, format));
  write(objects.map((o) => `${kind}.tidemark.dev/${o.metadata?.name} ${verb}\n`).join(''));
}
