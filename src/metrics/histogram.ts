import type { Metric } from 'prom-client';

export type Labels = Record<string, string>;

/** One label set's observations: `counts[i]` falls in bucket i alone (not cumulative), the last slot above every bound. */
export interface HistogramSeries {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram's observations aggregated per label set as they are made, so a scrape costs one entry
 * per series rather than one object and one prom-client `observe` per observation. Buckets follow
 * prom-client's rule: a value falls in the first bound it is less than or equal to.
 */
export class HistogramCounts {
  private readonly byKey = new Map<string, HistogramSeries>();

  constructor(readonly bounds: readonly number[]) {}

  /** `key` names the label set (the caller joins its values); `labels` are kept from the set's first observation. */
  observe(key: string, labels: Labels, value: number): void {
    let series = this.byKey.get(key);
    if (!series) {
      series = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.byKey.set(key, series);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && value > (this.bounds[bucket] as number)) bucket += 1;
    series.counts[bucket] = (series.counts[bucket] as number) + 1;
    series.sum += value;
    series.count += 1;
  }

  /** Adds `other`'s observations (same bounds) to these, series by series. */
  merge(other: HistogramCounts): void {
    for (const [key, series] of other.byKey) {
      const mine = this.byKey.get(key);
      if (!mine) {
        this.byKey.set(key, { ...series, counts: [...series.counts] });
        continue;
      }
      series.counts.forEach((n, i) => {
        mine.counts[i] = (mine.counts[i] as number) + n;
      });
      mine.sum += series.sum;
      mine.count += series.count;
    }
  }

  /** In the order their label sets were first observed. */
  series(): IterableIterator<HistogramSeries> {
    return this.byKey.values();
  }
}

/** The exposition lines of one series, in the shape prom-client's Registry formats (`le` first, then the series' labels). */
interface ExpositionValue {
  metricName: string;
  labels: { le?: number | string };
  sharedLabels: Labels;
  value: number;
}

/**
 * A histogram metric whose series are read, already aggregated, from `current` at scrape time: the
 * exposition prom-client's own Histogram writes (same `_bucket` lines with cumulative `le`, `+Inf`,
 * `_sum`, `_count`), without re-observing every value.
 */
export class AggregatedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly current: () => HistogramCounts | undefined,
  ) {}

  /** prom-client's Registry accepts any object with this shape; its typings list only its own classes. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExpositionValue[] }> {
    const counts = this.current();
    const values = counts ? this.values(counts) : [];
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  private values(counts: HistogramCounts): ExpositionValue[] {
    const le: { le: number | string }[] = [...counts.bounds.map((bound) => ({ le: bound })), { le: '+Inf' }];
    const values: ExpositionValue[] = [];
    for (const series of counts.series()) {
      let cumulative = 0;
      series.counts.forEach((count, i) => {
        cumulative += count;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: le[i] ?? {},
          sharedLabels: series.labels,
          value: cumulative,
        });
      });
      values.push({ metricName: `${this.name}_sum`, labels: {}, sharedLabels: series.labels, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: {}, sharedLabels: series.labels, value: series.count });
    }
    return values;
  }
}
