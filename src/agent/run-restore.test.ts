// Restored counts against the backup's (R-RESTORE: restored record counts vs the backup's).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countDifferences } from './run-restore.ts';

test('counts that differ, objects missing on either side, in one warning', () => {
  assert.deepEqual(
    countDifferences(
      [
        { name: 'a', records: 1 },
        { name: 'b', records: 2 },
        { name: 'gone', records: 3 },
      ],
      [
        { name: 'a', records: 1 },
        { name: 'b', records: 20 },
        { name: 'new', records: 0 },
      ],
    ),
    [
      "restored row counts differ from the backup's: b: 20 restored, 2 in the backup; new: 0 restored, none in the backup; gone: not restored, 3 in the backup",
    ],
  );
});

test('equal counts, or counts that could not be told on one side, give no warning', () => {
  assert.deepEqual(countDifferences([{ name: 'a', records: 1 }], [{ name: 'a', records: 1 }]), []);
  assert.deepEqual(countDifferences([{ name: 'a', records: 1 }], []), []);
  assert.deepEqual(countDifferences([], [{ name: 'a', records: 1 }]), []);
});
