import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alertRules, allQueries, dashboard, substituteVariables } from './monitoring.ts';

test("the dashboard's variables become the values that select everything", () => {
  assert.equal(
    substituteVariables(
      'rate(tidemark_controller_reconciles_total{job=~"$job",namespace=~"$namespace"}[$__rate_interval])',
    ),
    'rate(tidemark_controller_reconciles_total{job=~".+",namespace=~".*"}[1m])',
  );
});

test('a variable the tests cannot substitute is an error naming it', () => {
  assert.throws(() => substituteVariables('up{instance=~"$instance"}'), /\$instance/);
});

test('every alert and every panel query is listed once, by where it comes from', () => {
  const queries = allQueries();
  const panelQueries = dashboard().panels.flatMap((p) => p.targets ?? []);
  assert.equal(queries.length, alertRules().length + panelQueries.length);
  assert.equal(new Set(queries.map((q) => q.origin)).size, queries.length);
  assert.ok(queries.every((q) => !q.expr.includes('$')));
});
