// Scrapes the operator's /metrics as Prometheus would (fetch asks for gzip, as Prometheus does), one
// scrape after another, and measures each.
import { gzipSync } from 'node:zlib';

export interface ScrapeMeasure {
  /** Wall time of each scrape (request to the last byte), ms, sorted. */
  timesMs: number[];
  bytes: number;
  /** The same body gzipped (what goes over the wire to Prometheus). */
  gzipBytes: number;
  /** Samples in the body (lines that are not comments). */
  samples: number;
  /** tidemark_source_rpo_seconds series: one per policy source. */
  sourceSeries: number;
}

export async function measureScrapes(port: number, scrapes: number): Promise<ScrapeMeasure> {
  const timesMs: number[] = [];
  let body = '';
  for (let i = 0; i < scrapes; i++) {
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(30_000) });
    body = await response.text();
    timesMs.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${body.slice(0, 200)}`);
  }
  const lines = body.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  return {
    timesMs: timesMs.sort((a, b) => a - b),
    bytes: Buffer.byteLength(body),
    gzipBytes: gzipSync(body).length,
    samples: lines.length,
    sourceSeries: lines.filter((line) => line.startsWith('tidemark_source_rpo_seconds{')).length,
  };
}
