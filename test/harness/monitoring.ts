// Tidemark's alert rules and dashboard as the tests read them (deploy/monitoring, copied into the
// chart by scripts/sync-chart-crds.ts): every PromQL expression, with the dashboard's variables
// replaced by the values that select everything.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from './tools.ts';

export const monitoringDir = join(repoRoot, 'deploy', 'monitoring');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

export interface DashboardTarget {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
  legendFormat?: string;
  instant?: boolean;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: DashboardTarget[];
  fieldConfig?: { defaults?: { unit?: string } };
}
export interface DashboardVariable {
  name: string;
  type: string;
  query?: unknown;
  allValue?: string;
  includeAll?: boolean;
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating: { list: DashboardVariable[] };
}

/** The PrometheusRule's groups, as a Prometheus rule file holds them. */
export function ruleGroups(): RuleGroup[] {
  const rule = parse(readFileSync(join(monitoringDir, 'prometheusrule.yaml'), 'utf8')) as {
    spec: { groups: RuleGroup[] };
  };
  return rule.spec.groups;
}

/** The same groups as a rule file for Prometheus or promtool. */
export function ruleFile(): string {
  return stringify({ groups: ruleGroups() }, { lineWidth: 0 });
}

export function alertRules(): AlertRule[] {
  return ruleGroups().flatMap((g) => g.rules);
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(join(monitoringDir, 'dashboard.json'), 'utf8')) as Dashboard;
}

/** What Grafana substitutes for the dashboard's variables when "All" is selected. */
const variableValues: Record<string, string> = {
  $__rate_interval: '1m',
  $namespace: '.*',
  $job: '.+',
};

export function substituteVariables(expr: string): string {
  const replaced = expr.replace(/\$[_a-zA-Z]+/g, (name) => {
    const value = variableValues[name];
    if (value === undefined)
      throw new Error(`dashboard query uses ${name}, which the tests cannot substitute: ${expr}`);
    return value;
  });
  return replaced;
}

export interface Query {
  /** Where it comes from: `alert TidemarkRPOBreached` or `panel "RPO as a ratio of target" A`. */
  origin: string;
  expr: string;
}

/** Every PromQL expression of the dashboard (variables substituted) and of the alert rules. */
export function allQueries(): Query[] {
  const panelQueries = dashboard().panels.flatMap((panel) =>
    (panel.targets ?? []).map((t) => ({
      origin: `panel "${panel.title}" ${t.refId}`,
      expr: substituteVariables(t.expr),
    })),
  );
  return [...alertRules().map((r) => ({ origin: `alert ${r.alert}`, expr: r.expr })), ...panelQueries];
}
