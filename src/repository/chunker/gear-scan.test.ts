import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { repoRoot } from '../../../test/harness/tools.ts';
import { assembledGearScanModule, GEAR_SCAN_MODULE_PATH } from './testing/assemble-wasm.ts';

it('gear-scan-wasm.ts is gear-scan.wat assembled (run `npm run assemble-wasm` after changing the .wat)', async () => {
  assert.equal(readFileSync(join(repoRoot, GEAR_SCAN_MODULE_PATH), 'utf8'), await assembledGearScanModule());
});
