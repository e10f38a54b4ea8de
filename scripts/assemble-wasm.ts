// Writes src/repository/chunker/gear-scan-wasm.ts from gear-scan.wat (a unit test fails when they differ).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembledGearScanModule, GEAR_SCAN_MODULE_PATH } from '../src/repository/chunker/testing/assemble-wasm.ts';
import { repoRoot } from '../test/harness/tools.ts';

writeFileSync(join(repoRoot, GEAR_SCAN_MODULE_PATH), await assembledGearScanModule());
console.log(`wrote ${GEAR_SCAN_MODULE_PATH}`);
