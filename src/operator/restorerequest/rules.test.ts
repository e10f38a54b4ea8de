import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackupPolicy, RestoreRequest } from '../../api/kinds.ts';
import type { RestoreTarget } from '../jobs/access.ts';
import { checkTarget, chooseScript, liveSourceAt, liveSourceCandidates, matchesGlob } from './rules.ts';

const ns = 'tenants';

function policy(restore: BackupPolicy['spec']['restore'], name = 'tenants'): BackupPolicy {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'BackupPolicy',
    metadata: { name, namespace: ns },
    spec: {
      sources: [
        { name: 'acme-db', postgres: { connectionSecret: { name: 'pg-main' }, databases: ['acme'] } },
        { name: 'docs', volume: { claimName: 'documents' } },
      ],
      schedule: { full: { every: '1d' } },
      repository: 'primary',
      ...(restore ? { restore } : {}),
    } as BackupPolicy['spec'],
  };
}

function request(target: RestoreRequest['spec']['target'], postRestoreScript?: string): RestoreRequest {
  return {
    apiVersion: 'tidemark.dev/v1alpha1',
    kind: 'RestoreRequest',
    metadata: { name: 'qa', namespace: ns },
    spec: { from: { backupName: 'b-1' }, target, ...(postRestoreScript ? { postRestoreScript } : {}) },
  };
}

const pg = (secret: string, database: string): RestoreTarget => ({
  kind: 'database',
  engine: 'postgres',
  connectionSecret: secret,
  database,
});
const pgRequest = (secret: string, database: string) =>
  request({ postgres: { connectionSecret: { name: secret }, database } });

const QA = policy({
  targets: [
    { postgres: { connectionSecret: { name: 'pg-qa' }, databases: ['qa_*', 'staging'] } },
    { volume: { claimNames: ['restore-?'] } },
  ],
});

test('matchesGlob: * any run, ? one character, the rest literal, whole name', () => {
  assert.ok(matchesGlob('qa_*', 'qa_acme'));
  assert.ok(matchesGlob('qa_*', 'qa_'));
  assert.ok(!matchesGlob('qa_*', 'prod_qa_acme'));
  assert.ok(matchesGlob('restore-?', 'restore-1'));
  assert.ok(!matchesGlob('restore-?', 'restore-12'));
  assert.ok(!matchesGlob('a.b', 'axb'), '. is literal');
  assert.ok(!matchesGlob('staging', 'staging2'));
});

describe('checkTarget', () => {
  test('a database on a listed server matching a pattern is allowed', () => {
    assert.equal(checkTarget(pgRequest('pg-qa', 'qa_acme'), pg('pg-qa', 'qa_acme'), QA, [QA], 'primary'), undefined);
    assert.equal(checkTarget(pgRequest('pg-qa', 'staging'), pg('pg-qa', 'staging'), QA, [QA], 'primary'), undefined);
  });

  test('another database, another server, another engine or PVC is refused, naming the rules', () => {
    const cases: [RestoreRequest, RestoreTarget][] = [
      [pgRequest('pg-qa', 'billing'), pg('pg-qa', 'billing')],
      [pgRequest('pg-other', 'qa_acme'), pg('pg-other', 'qa_acme')],
      [
        request({ mysql: { connectionSecret: { name: 'pg-qa' }, database: 'qa_x' } }),
        { kind: 'database', engine: 'mysql', connectionSecret: 'pg-qa', database: 'qa_x' },
      ],
      [request({ volume: { claimName: 'restore-10' } }), { kind: 'volume', claimName: 'restore-10' }],
    ];
    for (const [req, target] of cases) {
      const refused = checkTarget(req, target, QA, [QA], 'primary');
      assert.equal(refused?.reason, 'TargetNotAllowed', JSON.stringify(target));
      assert.match(
        refused?.message ?? '',
        /policy tenants allows restores into: postgres pg-qa databases qa_\*,staging; volume claims restore-\?$/,
      );
    }
  });

  test('original needs an original rule; without spec.restore.targets that is the only one', () => {
    const original = request({ original: true });
    assert.match(
      checkTarget(original, pg('pg-main', 'acme'), QA, [QA], 'primary')?.message ?? '',
      /the original source is not allowed/,
    );
    const bare = policy(undefined);
    assert.equal(checkTarget(original, pg('pg-main', 'acme'), bare, [bare], 'primary'), undefined);
    assert.match(
      checkTarget(pgRequest('pg-qa', 'qa_acme'), pg('pg-qa', 'qa_acme'), bare, [bare], 'primary')?.message ?? '',
      /allows restores into: original: true \(the default without spec.restore.targets\)/,
    );
  });

  test("a live source spelled as a target is refused as original, even when a pattern covers it, and another policy's too", () => {
    const wide = policy({
      targets: [
        { postgres: { connectionSecret: { name: 'pg-main' }, databases: ['*'] } },
        { volume: { claimNames: ['*'] } },
      ],
    });
    const other = policy(undefined, 'billing');
    other.spec.sources = [{ name: 'ledger', postgres: { connectionSecret: { name: 'pg-main' }, allDatabases: true } }];
    assert.match(
      checkTarget(pgRequest('pg-main', 'acme'), pg('pg-main', 'acme'), wide, [wide], 'primary')?.message ?? '',
      /postgres database acme \(Secret pg-main\) is source acme-db of policy tenants: restoring over a live source needs target.original: true/,
    );
    assert.match(
      checkTarget(
        request({ volume: { claimName: 'documents' } }),
        { kind: 'volume', claimName: 'documents' },
        wide,
        [wide],
        'primary',
      )?.message ?? '',
      /PVC documents is source docs of policy tenants/,
    );
    assert.equal(liveSourceAt(pg('pg-main', 'anything'), [wide, other]), 'source ledger of policy billing');
    assert.equal(liveSourceAt(pg('pg-qa', 'acme'), [wide, other]), undefined, 'Secret names differ');
  });

  test('a PVC a volume source selects by label is that source (issue 9, finding 4)', () => {
    const selecting = policy(undefined, 'uploads');
    selecting.spec.sources = [{ name: 'files', volume: { selector: { matchLabels: { app: 'shop', tier: 'files' } } } }];
    const labels = new Map<string, Record<string, string>>([
      ['shop-files-0', { app: 'shop', tier: 'files', extra: 'x' }],
      ['shop-cache', { app: 'shop' }],
    ]);
    const volume = (claimName: string): RestoreTarget => ({ kind: 'volume', claimName });
    assert.equal(
      liveSourceAt(volume('shop-files-0'), [selecting], labels),
      'source files of policy uploads (it selects PVCs labelled app=shop,tier=files)',
    );
    assert.equal(liveSourceAt(volume('shop-cache'), [selecting], labels), undefined, 'labels not all matching');
    assert.equal(liveSourceAt(volume('restore-1'), [selecting], labels), undefined, 'no such PVC');
    const refusal = checkTarget(
      request({ volume: { claimName: 'shop-files-0' } }),
      volume('shop-files-0'),
      policy({ targets: [{ volume: { claimNames: ['shop-*'] } }] }),
      [selecting],
      'primary',
      labels,
    );
    assert.match(
      refusal?.message ?? '',
      /PVC shop-files-0 is source files of policy uploads .*needs target.original: true/,
    );
  });

  test('with no policy (disaster recovery): a volume only', () => {
    assert.equal(
      checkTarget(
        request({ volume: { claimName: 'x' } }),
        { kind: 'volume', claimName: 'x' },
        undefined,
        [],
        'primary',
      ),
      undefined,
    );
    assert.match(
      checkTarget(pgRequest('pg-qa', 'qa'), pg('pg-qa', 'qa'), undefined, [], 'primary')?.message ?? '',
      /no BackupPolicy in tenants uses repository primary.*only a volume target is allowed/,
    );
  });
});

describe('chooseScript', () => {
  const scripts = policy({
    postRestoreScripts: [
      { name: 'anonymise', sql: 'update t set x = null', runAs: { connectionSecret: { name: 'pg-anon' } } },
      { name: 'vacuum', sql: 'vacuum', runAsRestoreUser: true },
    ],
  });
  test('no name, no script', () => {
    assert.deepEqual(chooseScript(request({ original: true }), scripts), {});
  });
  test('a name picks the policy script', () => {
    const chosen = chooseScript(request({ original: true }, 'anonymise'), scripts);
    assert.ok('script' in chosen);
    assert.equal(chosen.script?.sql, 'update t set x = null');
  });
  test('an unknown name is refused, naming the available ones', () => {
    assert.deepEqual(chooseScript(request({ original: true }, 'drop-all'), scripts), {
      reason: 'UnknownScript',
      message: 'policy tenants has no post-restore script drop-all (it has: anonymise, vacuum)',
    });
    assert.match(
      (chooseScript(request({ original: true }, 'x'), policy(undefined)) as { message: string }).message,
      /it defines none/,
    );
    assert.match(
      (chooseScript(request({ original: true }, 'x'), undefined) as { message: string }).message,
      /no BackupPolicy applies/,
    );
  });
});

describe('liveSourceCandidates: sources the agent compares with the target server', () => {
  test('other Secrets backing up a database of that name, same engine; none for original', () => {
    const policies = [policy(undefined)];
    const target = pg('pg-qa', 'acme');
    const plain = request({ postgres: { connectionSecret: { name: 'pg-qa' }, database: 'acme' } });
    assert.deepEqual(liveSourceCandidates(plain, target, policies), [
      { name: 'source acme-db of policy tenants', connectionSecret: 'pg-main' },
    ]);
    assert.deepEqual(liveSourceCandidates(plain, pg('pg-qa', 'acme_qa'), policies), []);
    assert.deepEqual(liveSourceCandidates(request({ original: true }), target, policies), []);
    assert.deepEqual(
      liveSourceCandidates(
        plain,
        { kind: 'database', engine: 'mysql', connectionSecret: 'pg-qa', database: 'acme' },
        policies,
      ),
      [],
    );
  });
});
