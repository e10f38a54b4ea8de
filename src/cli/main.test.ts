import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../test/harness/tools.ts';
import { buildProgram } from './main.ts';

/** Runs the CLI in-process and returns what it printed; commander's exits become return values. */
async function run(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => chunks.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'tidemark', ...args]);
  } catch (error) {
    if ((error as { exitCode?: number }).exitCode !== 0) throw error;
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

test('tidemark crds prints the committed CRDs', async () => {
  const docs = parseAllDocuments(await run(['crds'])).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => d.spec.names.kind).sort(), [
    'Backup',
    'BackupExport',
    'BackupPolicy',
    'BackupReport',
    'BackupRepository',
    'RestoreRequest',
  ]);
  const committed = parseAllDocuments(
    readFileSync(join(repoRoot, 'crds/backups.tidemark.dev.yaml'), 'utf8'),
  )[0]?.toJS();
  assert.deepEqual(
    docs.find((d) => d.spec.names.kind === 'Backup'),
    committed,
  );
});

test('tidemark --version prints the package version', async () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal((await run(['--version'])).trim(), pkg.version);
});

test('the kubectl plugin commands name themselves as people type them', () => {
  const plugin = buildProgram().commands.find((c) => c.name() === 'kubectl');
  const status = plugin?.commands.find((c) => c.name() === 'status');
  assert.match(status?.helpInformation() ?? '', /^Usage: kubectl tidemark status \[options\] \[policy\]/);
  assert.deepEqual(
    plugin?.commands.map((c) => c.name()),
    ['status', 'report', 'backup', 'restore', 'approve', 'export', 'logs'],
  );
});
