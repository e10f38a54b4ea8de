// The aggregated histogram writes exactly what prom-client's own Histogram writes for the same observations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { AggregatedHistogram, HistogramCounts, type Labels } from './histogram.ts';

const BOUNDS = [10, 30, 60, 2 ** 40];
const NAME = 'tidemark_test_seconds';
const HELP = 'A test histogram.';

const a = { namespace: 'acme', policy: 'tenants', type: 'full' };
const b = { namespace: 'acme', policy: 'tenants', type: 'incremental' };
const c = { namespace: 'other "ns"', policy: 'back\\slash', type: 'full' };

/** Values on each bound, just above and below it, zero, fractions and beyond the last bound. */
const OBSERVATIONS: [Labels, number][] = [
  [a, 0],
  [a, 10],
  [a, 10.000001],
  [b, 9.5],
  [a, 30],
  [c, 2 ** 40],
  [a, 59.25],
  [b, 60],
  [c, 2 ** 40 + 1],
  [a, 1e15],
  [b, 0.125],
  [a, 31],
];

async function promClient(observations: [Labels, number][]): Promise<string> {
  const registry = new Registry();
  const histogram = new Histogram({
    name: NAME,
    help: HELP,
    labelNames: ['namespace', 'policy', 'type'],
    buckets: BOUNDS,
    registers: [registry],
  });
  for (const [labels, value] of observations) histogram.observe(labels, value);
  return registry.metrics();
}

async function aggregated(observations: [Labels, number][] | undefined): Promise<string> {
  const counts = observations && new HistogramCounts(BOUNDS);
  for (const [labels, value] of observations ?? [])
    counts?.observe(`${labels.namespace}\0${labels.policy}\0${labels.type}`, { ...labels }, value);
  const registry = new Registry();
  registry.registerMetric(new AggregatedHistogram(NAME, HELP, () => counts).asMetric());
  return registry.metrics();
}

describe('AggregatedHistogram', () => {
  it('writes the exposition of prom-client’s Histogram fed the same observations', async () => {
    const expected = await promClient(OBSERVATIONS);
    // The comparison can fail: the reference has cumulative buckets, +Inf, sums and counts per series.
    assert.match(
      expected,
      /^tidemark_test_seconds_bucket\{le="30",namespace="acme",policy="tenants",type="full"\} 4$/m,
    );
    assert.match(
      expected,
      /^tidemark_test_seconds_bucket\{le="\+Inf",namespace="acme",policy="tenants",type="full"\} 7$/m,
    );
    assert.equal(await aggregated(OBSERVATIONS), expected);
  });

  it('writes only the header when nothing was observed, or nothing is observed now', async () => {
    assert.equal(await aggregated([]), await promClient([]));
    assert.equal(await aggregated(undefined), await promClient([]));
  });

  it('keeps one series per label set, in the order first observed', () => {
    const counts = new HistogramCounts(BOUNDS);
    for (const [labels, value] of OBSERVATIONS) counts.observe(JSON.stringify(labels), labels, value);
    assert.deepEqual(
      [...counts.series()].map((s) => [s.labels, s.counts, s.count]),
      [
        [a, [2, 2, 2, 0, 1], 7],
        [b, [2, 0, 1, 0, 0], 3],
        [c, [0, 0, 0, 1, 1], 2],
      ],
    );
  });
});

describe('HistogramCounts.merge', () => {
  it('adds series it lacks and sums those it has, leaving the merged one unchanged', () => {
    const whole = new HistogramCounts(BOUNDS);
    const left = new HistogramCounts(BOUNDS);
    const right = new HistogramCounts(BOUNDS);
    OBSERVATIONS.forEach(([labels, value], i) => {
      const key = Object.values(labels).join('\0');
      whole.observe(key, labels, value);
      (i % 2 ? left : right).observe(key, labels, value);
    });
    const rightBefore = JSON.stringify([...right.series()]);
    const merged = new HistogramCounts(BOUNDS);
    merged.merge(left);
    merged.merge(right);
    const byLabels = (h: HistogramCounts) => [...h.series()].map((s) => JSON.stringify(s)).sort();
    assert.deepEqual(byLabels(merged), byLabels(whole));
    merged.merge(right);
    assert.equal(JSON.stringify([...right.series()]), rightBefore, 'the merged-in counts are not changed');
  });
});
