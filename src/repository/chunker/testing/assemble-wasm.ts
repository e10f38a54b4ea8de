import { readFileSync } from 'node:fs';
import wabt from 'wabt';

const wat = new URL('../gear-scan.wat', import.meta.url);
export const GEAR_SCAN_MODULE_PATH = 'src/repository/chunker/gear-scan-wasm.ts';

/** The source of gear-scan-wasm.ts: gear-scan.wat assembled by wabt (a pinned devDependency). */
export async function assembledGearScanModule(): Promise<string> {
  const parsed = (await wabt()).parseWat('gear-scan.wat', readFileSync(wat, 'utf8'));
  try {
    const { buffer } = parsed.toBinary({});
    const base64 = Buffer.from(buffer).toString('base64');
    return [
      '// Generated from gear-scan.wat by `npm run assemble-wasm`; do not edit.',
      'export const GEAR_SCAN_WASM =', // as the formatter breaks it
      `  '${base64}';`,
      '',
    ].join('\n');
  } finally {
    parsed.destroy();
  }
}
