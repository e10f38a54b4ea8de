import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TidemarkError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import { progressReporter } from './progress.ts';
import { openRepository, print, RETRY_BUDGET_HELP, type RepoOptions } from './repository-options.ts';

/** Reads a password file into the variable the database tools use, so it never appears in argv. */
function environment(passwordFile: string | undefined, sourceUrl: string): NodeJS.ProcessEnv {
  if (!passwordFile) return process.env;
  const variable = /^mysql:|^mariadb:/.test(sourceUrl) ? 'MYSQL_PWD' : 'PGPASSWORD';
  return { ...process.env, [variable]: readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '') };
}

const repoOptions = (command: Command) =>
  command
    .option('--repo <url>', 'repository URL (or TIDEMARK_REPO)')
    .option('--key-file <path>', 'file holding the repository passphrase (or TIDEMARK_REPO_KEY)')
    .option('--password-file <path>', 'file holding the database password (else PGPASSWORD / MYSQL_PWD)')
    .option('--json', 'print the result as JSON')
    .option('--retry-budget <duration>', RETRY_BUDGET_HELP);

export function registerDataCommands(program: Command): void {
  repoOptions(
    program
      .command('backup')
      .description('back up a database or a directory outside a cluster')
      .requiredOption('--source <url>', 'postgresql://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB or file:///path')
      .option('--all-databases', 'every database of the server (the URL ends in /)')
      .option('--type <type>', 'full or incremental', 'full')
      .option('--exclude <glob...>', 'paths to leave out of a directory backup')
      .option('--tag <tag...>', 'tags for the snapshot'),
  ).action(
    async (
      options: RepoOptions & {
        source: string;
        allDatabases?: boolean;
        type: string;
        exclude?: string[];
        tag?: string[];
        passwordFile?: string;
      },
    ) => {
      if (options.type !== 'full' && options.type !== 'incremental')
        throw new TidemarkError('InvalidArgument', `--type must be full or incremental, not ${options.type}`);
      const { runBackup } = await import('../agent/run-backup.ts');
      const snapshot = await runBackup({
        sourceUrl: options.source,
        allDatabases: options.allDatabases ?? false,
        repository: await openRepository(options),
        type: options.type,
        excludes: options.exclude ?? [],
        tags: options.tag ?? [],
        env: environment(options.passwordFile, options.source),
        onProgress: progressReporter(),
      });
      const s = snapshot.summary;
      const counts = (snapshot.objects ?? []).map((o) => `  ${o.name}: ${o.records}`).join('\n');
      const skipped = (snapshot.skipped ?? []).map((o) => `  not backed up: ${o.path}: ${o.reason}`).join('\n');
      const lossy = (snapshot.lossy ?? []).map((what) => `  not kept exactly: ${what}`).join('\n');
      print(
        options,
        snapshot,
        [
          `\nsnapshot ${snapshot.id.slice(0, 12)} (${snapshot.type}) of ${snapshot.source}: ${formatBytes(s.logicalBytes)} read, ${formatBytes(s.uploadedBytes)} uploaded in ${(s.durationMs / 1000).toFixed(1)} s`,
          counts,
          skipped,
          lossy,
        ]
          .filter(Boolean)
          .join('\n'),
      );
    },
  );

  repoOptions(
    program
      .command('restore')
      .description('restore a snapshot into a database or a directory')
      .requiredOption('--snapshot <id>', 'snapshot id, unique prefix, or latest')
      .requiredOption('--target <url>', 'postgresql://USER@HOST:PORT/NEWDB, mysql://... or file:///path')
      .option(
        '--of <source>',
        'with --snapshot latest: the latest snapshot of this source (as listed by repo snapshots)',
      )
      .option('--mode <mode>', 'new (refuse a non-empty target) or replace', 'new')
      .option('--database <name>', 'which database of a multi-database snapshot')
      .option('--post-restore-sql <file>', 'SQL file to run on the restored database (e.g. anonymisation)')
      .option(
        '--create-missing-roles',
        'PostgreSQL: create the roles the backup names that the target lacks (NOLOGIN, no password) instead of failing',
      ),
  ).action(
    async (
      options: RepoOptions & {
        snapshot: string;
        target: string;
        of?: string;
        mode: string;
        database?: string;
        postRestoreSql?: string;
        createMissingRoles?: boolean;
        passwordFile?: string;
      },
    ) => {
      if (options.mode !== 'new' && options.mode !== 'replace')
        throw new TidemarkError('InvalidArgument', `--mode must be new or replace, not ${options.mode}`);
      const mode = options.mode;
      const [{ runRestore }, { interruptible }] = await Promise.all([
        import('../agent/run-restore.ts'),
        import('../agent/interrupt.ts'),
      ]);
      const repository = await openRepository(options);
      const snapshot = await repository.findSnapshot(options.snapshot, options.of);
      const outcome = await interruptible(options.target, (signal) =>
        runRestore({
          repository,
          snapshot,
          targetUrl: options.target,
          mode,
          ...(options.database ? { database: options.database } : {}),
          ...(options.postRestoreSql ? { postRestoreSQL: readFileSync(options.postRestoreSql, 'utf8') } : {}),
          createMissingRoles: options.createMissingRoles === true,
          env: environment(options.passwordFile, options.target),
          onProgress: progressReporter(),
          ...(signal ? { signal } : {}),
        }),
      );
      const expected = new Map(outcome.expected.map((o) => [o.name, o.records]));
      const lines = outcome.restored.map(
        (o) => `  ${o.name}: ${o.records} restored, ${expected.get(o.name) ?? '?'} in the backup`,
      );
      print(
        options,
        { snapshot: snapshot.id, ...outcome },
        [
          `\nrestored ${snapshot.id.slice(0, 12)} into ${options.target} in ${(outcome.durationMs / 1000).toFixed(1)} s`,
          ...lines,
          ...outcome.skipped.map((o) => `  note: ${o.path}: ${o.reason}`),
          ...outcome.warnings.map((warning) => `warning: ${warning}`),
        ].join('\n'),
      );
    },
  );
}
