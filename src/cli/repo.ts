import type { Command } from 'commander';
import { parseDuration } from '../api/duration.ts';
import { isCode, TidemarkError } from '../errors.ts';
import { idOf, type SnapshotId } from '../repository/format.ts';
import { Repository } from '../repository/repository.ts';
import { redactUrl } from '../repository/storage/url.ts';
import { formatBytes } from '../units.ts';
import { progressReporter } from './progress.ts';
import {
  openRepository,
  passphrase,
  print,
  RETRY_BUDGET_HELP,
  type RepoOptions,
  repoUrl,
  storageAt,
} from './repository-options.ts';

/** A snapshot id by id or unique prefix; a damaged snapshot (unreadable) can be named too, to forget it. */
async function snapshotOrDamaged(repository: Repository, ref: string): Promise<SnapshotId> {
  try {
    return (await repository.findSnapshot(ref)).id;
  } catch (error) {
    const damaged = (await repository.snapshotListing()).damaged.filter((d) => idOf(d.name).startsWith(ref));
    if (damaged.length === 1 && damaged[0] && !isCode(error, 'InvalidArgument'))
      return idOf(damaged[0].name) as SnapshotId;
    throw error;
  }
}

export function registerRepoCommands(program: Command): void {
  const repo = program
    .command('repo')
    .description('work with a backup repository directly (file://, s3://, azblob:// URLs)')
    .option('--repo <url>', 'repository URL (or TIDEMARK_REPO)')
    .option('--key-file <path>', 'file holding the repository passphrase (or TIDEMARK_REPO_KEY)')
    .option('--json', 'print results as JSON')
    .option('--retry-budget <duration>', RETRY_BUDGET_HELP);
  const opts = (command: Command) => ({ ...repo.opts<RepoOptions>(), ...command.opts<RepoOptions>() });

  repo
    .command('init')
    .description('create a repository (the passphrase wraps its keys)')
    .action(async (_args, command: Command) => {
      const options = opts(command);
      const url = repoUrl(options);
      const created = await Repository.init(
        storageAt(url, options),
        passphrase(options.keyFile, 'TIDEMARK_REPO_KEY', '--key-file'),
      );
      print(
        options,
        { id: created.config.id, repository: redactUrl(url) },
        `created repository ${created.config.id.slice(0, 12)} at ${redactUrl(url)}`,
      );
    });

  repo
    .command('backup')
    .description('back up a directory, or standard input with --source -; waits up to 10 minutes for a running prune')
    .requiredOption('--source <path>', 'directory to back up, or - for standard input')
    .option('--type <type>', 'full or incremental (continues the latest chain of the same source)', 'incremental')
    .option('--stdin-name <name>', 'name of the stream read from standard input', 'stdin')
    .option('--tag <tag...>', 'tags to add to the snapshot')
    .action(async (options: { source: string; type: string; stdinName: string; tag?: string[] }, command: Command) => {
      const common = opts(command);
      if (options.type !== 'full' && options.type !== 'incremental')
        throw new TidemarkError('InvalidArgument', `--type must be full or incremental, not ${options.type}`);
      const { backupStreams, backupTree } = await import('../repository/backup.ts');
      const { UnchangedScanner } = await import('../repository/unchanged-scanner.ts');
      // The tree is listed while the repository opens (keys, index), for the incremental's comparison with its parent.
      const scanner =
        options.source !== '-' && options.type === 'incremental'
          ? UnchangedScanner.prescanning(options.source, [])
          : undefined;
      const repository = await openRepository(common).catch(async (error: unknown) => {
        await scanner?.close();
        throw error;
      });
      const source = options.source === '-' ? `stdin:${options.stdinName}` : `file://${options.source}`;
      const parent = (await repository.snapshots()).find((s) => s.source === source);
      const backupOptions = {
        type: options.type,
        source,
        tags: options.tag ?? [],
        onProgress: progressReporter(),
        ...(parent ? { parent } : {}),
        ...(scanner ? { scanner } : {}),
      } as const;
      const snapshot =
        options.source === '-'
          ? await backupStreams(repository, [{ name: options.stdinName, data: process.stdin }], backupOptions)
          : await backupTree(repository, options.source, backupOptions);
      const s = snapshot.summary;
      print(
        common,
        snapshot,
        `\nsnapshot ${snapshot.id.slice(0, 12)} (${snapshot.type}) of ${source}: ${s.files} files, ${formatBytes(s.logicalBytes)} read, ${formatBytes(s.uploadedBytes)} uploaded in ${(s.durationMs / 1000).toFixed(1)} s`,
      );
    });

  repo
    .command('restore')
    .description(
      'restore a snapshot into an empty directory, or a stream to standard output with --target -; waits up to 10 minutes for a running prune',
    )
    .requiredOption('--snapshot <id>', 'snapshot id, unique prefix, or latest')
    .requiredOption('--target <path>', 'empty directory, or - for standard output')
    .option('--stream <name>', 'which stream of a stream snapshot')
    .action(async (options: { snapshot: string; target: string; stream?: string }, command: Command) => {
      const common = opts(command);
      const { restoreStream, restoreTree } = await import('../repository/restore.ts');
      const repository = await openRepository(common);
      const snapshot = await repository.findSnapshot(options.snapshot);
      if (options.target === '-')
        await restoreStream(repository, snapshot, process.stdout, options.stream, { onProgress: progressReporter() });
      else {
        const notRestored = await restoreTree(repository, snapshot, options.target, { onProgress: progressReporter() });
        print(
          common,
          { snapshot: snapshot.id, target: options.target, notRestored },
          [
            `\nrestored ${snapshot.id.slice(0, 12)} to ${options.target}`,
            ...notRestored.map((n) => `  not restored exactly: ${n.path}: ${n.reason}`),
          ].join('\n'),
        );
      }
    });

  repo
    .command('snapshots')
    .description('list snapshots, newest first')
    .action(async (_args, command: Command) => {
      const options = opts(command);
      const repository = await openRepository(options);
      const { snapshots, damaged } = await repository.snapshotListing();
      const lines = snapshots.map(
        (s) =>
          `${s.id.slice(0, 12)}  ${s.time}  ${s.type.padEnd(11)}  ${formatBytes(s.summary.logicalBytes).padStart(10)}  ${s.source}`,
      );
      for (const d of damaged) lines.push(`${idOf(d.name).slice(0, 12)}  DAMAGED: ${d.reason}`);
      print(
        options,
        [...snapshots, ...damaged.map((d) => ({ id: idOf(d.name), damaged: d.reason }))],
        ['ID            TIME                      TYPE         SIZE        SOURCE', ...lines].join('\n'),
      );
      const unreadable = [...damaged, ...repository.damagedIndexFiles].map((d) => d.name);
      if (unreadable.length)
        process.stderr.write(
          `cannot be read: ${unreadable.join(', ')}; \`tidemark repo check\` says which snapshots this affects\n`,
        );
    });

  repo
    .command('check')
    .description('verify the repository structure; --read-data also decrypts and verifies every pack')
    .option('--read-data', 'download and verify every pack')
    .action(async (options: { readData?: boolean }, command: Command) => {
      const common = opts(command);
      const { check } = await import('../repository/check.ts');
      const report = await check(await openRepository(common), {
        readData: options.readData ?? false,
        onProgress: progressReporter(),
      });
      const { tempBlobs, staleLocks } = report.leftovers;
      const leftovers = [...tempBlobs.map((t) => `temporary blob ${t}`), ...staleLocks.map((l) => `stale lock ${l}`)];
      const summary = [
        `${report.snapshots} snapshots, ${report.packs} packs`,
        `${report.unreferencedPacks} unreferenced packs safe to delete (prune removes them)`,
        ...(report.packsToReindex.length
          ? [`${report.packsToReindex.length} packs to re-index (repo repair index)`]
          : []),
        ...(leftovers.length
          ? [`${leftovers.length} crash leftovers (prune or repo unlock --remove-stale removes them)`]
          : []),
      ].join(', ');
      print(
        common,
        report,
        [
          ...report.errors,
          ...leftovers,
          report.errors.length ? `check FAILED: ${summary}` : `no errors: ${summary}`,
        ].join('\n'),
      );
      if (report.errors.length) process.exitCode = 1;
    });

  repo
    .command('repair')
    .description('rebuild damaged repository metadata')
    .command('index')
    .description(
      "rebuild the index from the packs' own encrypted headers (after a damaged or deleted index file); takes an exclusive lock",
    )
    .action(async (_args, command: Command) => {
      const common = opts(command);
      const { repairIndex } = await import('../repository/repair.ts');
      const report = await repairIndex(await openRepository(common));
      const unreadable = report.unreadablePacks.map((p) => `pack ${p.pack}: ${p.reason} (left out)`);
      print(
        common,
        report,
        [
          ...unreadable,
          `rebuilt the index: ${report.packs} packs, ${report.chunks} chunks, replacing ${report.replacedIndexFiles} index files; run \`tidemark repo check\` to see what is still missing`,
        ].join('\n'),
      );
      if (unreadable.length) process.exitCode = 1;
    });

  repo
    .command('unlock')
    .description(
      "list the repository's locks; --remove-stale removes those of dead or silent holders and old temporary blobs",
    )
    .option('--remove-stale', 'remove stale locks and temporary blobs left by crashed writers')
    .action(async (options: { removeStale?: boolean }, command: Command) => {
      const common = opts(command);
      const { findCrashLeftovers, removeCrashLeftovers } = await import('../repository/housekeeping.ts');
      const storage = storageAt(repoUrl(common), common);
      const leftovers = options.removeStale ? await removeCrashLeftovers(storage) : await findCrashLeftovers(storage);
      const verb = options.removeStale ? 'removed' : 'found';
      print(
        common,
        leftovers,
        [
          ...leftovers.staleLocks.map((l) => `${verb} stale lock ${l.name}: ${l.reason}`),
          ...leftovers.tempBlobs.map((t) => `${verb} temporary blob ${t.name} (${t.size} bytes, ${t.modified})`),
          `${verb} ${leftovers.staleLocks.length} stale locks, ${leftovers.tempBlobs.length} temporary blobs${options.removeStale ? '' : ' (--remove-stale removes them)'}`,
        ].join('\n'),
      );
    });

  repo
    .command('forget')
    .description('remove snapshots (their data goes with the next prune)')
    .argument('<ids...>', 'snapshot ids or unique prefixes')
    .action(async (ids: string[], _options, command: Command) => {
      const common = opts(command);
      const { forget } = await import('../repository/prune.ts');
      const repository = await openRepository(common);
      const snapshots = await Promise.all(ids.map((id) => snapshotOrDamaged(repository, id)));
      await forget(repository, snapshots);
      print(common, snapshots, `forgot ${snapshots.length} snapshot(s)`);
    });

  repo
    .command('prune')
    .description(
      'delete data no snapshot references; refuses (error Locked) while a backup, restore or copy holds the repository, unless --lock-wait lets it wait',
    )
    .option(
      '--lock-wait <duration>',
      'how long to wait for running backups, restores and copies to finish before failing with Locked (e.g. 90s, 10m)',
      '0s',
    )
    .action(async (options: { lockWait: string }, command: Command) => {
      const common = opts(command);
      const { prune } = await import('../repository/prune.ts');
      const lockWaitMs = parseDuration(options.lockWait, { allowZero: true });
      const report = await prune(await openRepository(common), { lockWaitMs });
      print(
        common,
        report,
        `deleted ${report.deletedPacks} packs (${formatBytes(report.deletedBytes)}), repacked ${report.repackedPacks}, kept ${report.keptPacks}`,
      );
    });

  repo
    .command('copy')
    .description(
      'copy snapshots to another repository, uploading only what it lacks; waits up to 10 minutes for a running prune on either',
    )
    .requiredOption('--to <url>', 'destination repository URL')
    .option('--to-key-file <path>', 'destination passphrase file (or TIDEMARK_TO_REPO_KEY)')
    .option('--snapshot <id>', 'one snapshot (default: all)')
    .action(async (options: { to: string; toKeyFile?: string; snapshot?: string }, command: Command) => {
      const common = opts(command);
      const { copySnapshots } = await import('../repository/copy.ts');
      const source = await openRepository(common);
      const destination = await Repository.open(
        storageAt(options.to, common),
        passphrase(options.toKeyFile, 'TIDEMARK_TO_REPO_KEY', '--to-key-file'),
      );
      const listing = options.snapshot
        ? { snapshots: [await source.findSnapshot(options.snapshot)], damaged: [] }
        : await source.snapshotListing();
      const report = await copySnapshots(source, destination, listing.snapshots, { onProgress: progressReporter() });
      const unreadable = listing.damaged.map((d) => idOf(d.name));
      print(
        common,
        { ...report, unreadable },
        `copied ${report.copied.length}, already there ${report.skipped.length}, uploaded ${formatBytes(report.uploadedBytes)}${unreadable.length ? `; not copied, unreadable in the source (see repo check): ${unreadable.join(', ')}` : ''}`,
      );
      if (unreadable.length) process.exitCode = 1;
    });
}
