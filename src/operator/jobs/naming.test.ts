import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupName } from '../backuppolicy/schedule.ts';
import { jobName } from './naming.ts';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const at = (iso: string) => new Date(iso);

describe('jobName', () => {
  it('keeps a short Backup name', () => {
    assert.equal(jobName('nightly-orders-full-20260329t0100z'), 'nightly-orders-full-20260329t0100z');
  });

  it('cuts a long name to a 63-character label with a hash, keeping the type and stamp', () => {
    const long = backupName(`${'a'.repeat(60)}.${'b'.repeat(20)}`, 'orders', 'full', at('2026-03-29T01:00:00Z'));
    const job = jobName(long);
    assert.ok(job.length <= 63, `${job.length}`);
    assert.match(job, LABEL);
    assert.ok(job.endsWith('-full-20260329t0100z'), job);
    assert.equal(jobName(long), job, 'deterministic');
  });

  it('keeps names apart that differ only past the cut, or only by a dot', () => {
    const a = jobName(`${'a'.repeat(70)}-x-full-20260329t0100z`);
    const b = jobName(`${'a'.repeat(70)}-y-full-20260329t0100z`);
    assert.notEqual(a, b);
    const dotted = jobName('a.b-full-20260329t0100z');
    assert.notEqual(dotted, jobName('a-b-full-20260329t0100z'));
    assert.match(dotted, LABEL);
  });

  it('is a valid label for every length, hand-made names too', () => {
    for (let n = 1; n <= 253; n += 7) {
      for (const name of [
        'a'.repeat(n),
        `${'a.'.repeat(Math.ceil(n / 2)).slice(0, n - 1)}z`,
        `my-backup-${'9'.repeat(n)}`,
      ]) {
        const job = jobName(name);
        assert.ok(job.length <= 63 && LABEL.test(job), `${name} → ${job}`);
      }
    }
  });
});
