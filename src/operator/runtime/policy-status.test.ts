import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepForeignFields } from './policy-status.ts';

test("keeps the audit controller's lastAudit of the status it writes over, for the sources that remain", () => {
  const lastAudit = {
    scheduledTime: '2026-11-23T01:00:00Z',
    completionTime: '2026-11-23T01:00:09Z',
    result: 'Clean' as const,
    missingObjects: 0,
  };
  const decided = { sources: [{ name: 'db', lastSuccessfulBackup: 'b2' }, { name: 'docs' }] };
  const current = {
    sources: [
      { name: 'db', lastSuccessfulBackup: 'b1', lastAudit },
      { name: 'gone', lastAudit },
    ],
  };
  assert.deepEqual(keepForeignFields(current, decided).sources, [
    { name: 'db', lastSuccessfulBackup: 'b2', lastAudit },
    { name: 'docs' },
  ]);
});
