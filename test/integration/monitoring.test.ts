// The alert rules and the dashboard of deploy/monitoring (and so of the chart): `promtool test rules`
// with a firing and a silent case for every alert, runbooks that exist, and the dashboard linted
// (the rules of Grafana's dashboard-linter, see docs/testing.md) with every query parsed by promtool.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { alertRules, dashboard, ruleFile, substituteVariables } from '../harness/monitoring.ts';
import { runCommand } from '../harness/process.ts';
import { repoRoot, systemTool } from '../harness/tools.ts';
import { makeWorkDir } from '../harness/workdir.ts';

const workDir = makeWorkDir('monitoring');
const promtool = () => systemTool('promtool', 'prometheus');
const unitTests = join(repoRoot, 'test', 'integration', 'monitoring', 'alerts.test.yaml');

after(() => workDir.remove());

interface PromtoolTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('alert rules', () => {
  test('pass `promtool check rules` and every `promtool test rules` case', async () => {
    writeFileSync(join(workDir.path, 'rules.yaml'), ruleFile());
    copyFileSync(unitTests, join(workDir.path, 'alerts.test.yaml'));
    await runPromtool(['check', 'rules', 'rules.yaml']);
    await runPromtool(['test', 'rules', 'alerts.test.yaml']);
  });

  test('every alert has a case where it fires and one where it stays silent', () => {
    const cases = (parse(readFileSync(unitTests, 'utf8')) as PromtoolTests).tests.flatMap(
      (t) => t.alert_rule_test ?? [],
    );
    for (const { alert } of alertRules()) {
      const mine = cases.filter((c) => c.alertname === alert);
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert}: no case where it fires`,
      );
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert}: no case where it stays silent`,
      );
    }
  });

  test('every alert has a severity, a summary and a runbook section in docs/operations.md', () => {
    const anchors = headingAnchors(readFileSync(join(repoRoot, 'docs', 'operations.md'), 'utf8'));
    const base = 'https://github.com/tidemark-dev/tidemark/blob/main/docs/operations.md#';
    for (const rule of alertRules()) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning)$/, rule.alert);
      assert.ok(rule.annotations?.summary, `${rule.alert}: summary`);
      const url = rule.annotations?.runbook_url ?? '';
      assert.ok(url.startsWith(base), `${rule.alert}: runbook_url ${url}`);
      assert.ok(
        anchors.has(url.slice(base.length)),
        `${rule.alert}: docs/operations.md has no section #${url.slice(base.length)}`,
      );
    }
  });
});

describe('dashboard (the rules of Grafana dashboard-linter)', () => {
  const board = dashboard();
  const panels = board.panels.filter((p) => p.type !== 'row');
  const variables = new Map(board.templating.list.map((v) => [v.name, v]));

  test('template-datasource-rule: a Prometheus data source variable named datasource', () => {
    const ds = variables.get('datasource');
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus');
  });

  test('template-job-rule and template-namespace: job and namespace variables with "All"', () => {
    for (const name of ['job', 'namespace']) {
      const v = variables.get(name);
      assert.equal(v?.type, 'query', name);
      assert.equal(v?.includeAll, true, name);
      assert.ok(v?.allValue, `${name}: allValue (a regex, not the list of every value)`);
    }
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
  const datasourceVariable = '${datasource}';

  test('panel-datasource-rule: every panel and query uses the datasource variable', () => {
    for (const panel of panels) {
      assert.equal(panel.datasource?.uid, datasourceVariable, panel.title);
      for (const t of panel.targets ?? [])
        assert.equal(t.datasource?.uid, datasourceVariable, `${panel.title} ${t.refId}`);
    }
  });

  test('panel-title-description-rule and panel-units-rule: a title, a description and a unit', () => {
    for (const panel of panels) {
      assert.ok(panel.title.trim(), `panel ${panel.id}: title`);
      assert.ok(panel.description?.trim(), `${panel.title}: description`);
      assert.ok(panel.fieldConfig?.defaults?.unit, `${panel.title}: unit`);
    }
  });

  test('uid and layout: a uid, unique panel ids, panels that do not overlap, every panel with a query', () => {
    assert.match(board.uid, /^[a-z0-9-]{1,40}$/);
    const ids = board.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    const titles = panels.map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length, 'unique panel titles (the tests name queries by them)');
    const cells = new Map<string, string>();
    for (const panel of board.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(x >= 0 && x + w <= 24, `${panel.title}: within 24 columns`);
      for (let row = y; row < y + h; row++)
        for (let col = x; col < x + w; col++) {
          const other = cells.get(`${row}:${col}`);
          assert.equal(other, undefined, `${panel.title} overlaps ${other}`);
          cells.set(`${row}:${col}`, panel.title);
        }
    }
    for (const panel of panels) assert.ok((panel.targets ?? []).length > 0, `${panel.title}: no query`);
  });

  test('target-rate-interval-rule, target-job-rule and the namespace filter', () => {
    for (const panel of panels)
      for (const { expr, refId } of panel.targets ?? []) {
        const where = `${panel.title} ${refId}: ${expr}`;
        for (const range of expr.matchAll(/\b(?:rate|irate|increase)\([^[]*\[([^\]]+)\]/g))
          assert.equal(range[1], '$__rate_interval', where);
        // Operator health is per scrape target; object metrics are filtered by tenant namespace.
        for (const selector of expr.matchAll(/\b(up|tidemark_[a-z_]+)(\{[^}]*\})?/g)) {
          const [, metric = '', labels = ''] = selector;
          const perTarget =
            metric === 'up' || metric === 'tidemark_leader' || metric.startsWith('tidemark_controller_');
          if (perTarget) assert.match(labels, /job=~"\$job"/, where);
          else assert.match(labels, /namespace=~"\$namespace"/, where);
        }
      }
  });

  test('target-promql-rule: promtool parses every query', async () => {
    const rules = panels.flatMap((panel) =>
      (panel.targets ?? []).map((t) => ({
        record: `dashboard:panel_${panel.id}_${t.refId}`,
        expr: substituteVariables(t.expr),
      })),
    );
    writeFileSync(join(workDir.path, 'dashboard-queries.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    await runPromtool(['check', 'rules', 'dashboard-queries.yaml']);
  });
});

/** promtool in the work directory; a failure carries its report (promtool prints it on stdout). */
async function runPromtool(args: string[]): Promise<void> {
  const logFile = join(workDir.path, 'promtool.log');
  writeFileSync(logFile, '');
  try {
    await runCommand(promtool(), args, { cwd: workDir.path, logFile });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${readFileSync(logFile, 'utf8')}`);
  }
}

/** GitHub's anchors for a markdown file's headings: lower case, punctuation dropped, spaces to hyphens. */
function headingAnchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
      (m[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    ),
  );
}
