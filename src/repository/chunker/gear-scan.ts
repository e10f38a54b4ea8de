import { GEAR_SCAN_WASM } from './gear-scan-wasm.ts';

/** A seed's gear table and the same values shifted left by one (see fastcdc.ts). */
export interface GearTables {
  gear: Int32Array;
  gearShifted: Int32Array;
}

interface GearScanExports {
  memory: WebAssembly.Memory;
  hash: WebAssembly.Global;
  scan(from: number, to: number, h: number, mask: number): number;
}

/** Where gear-scan.wat keeps the bytes to scan, and how many at once. */
const WINDOW_AT = 4096;
const WINDOW = 256 * 1024;

let instance: { exports: GearScanExports; memory: Uint8Array; tables: Int32Array } | undefined;
/** The tables in the module's memory now: chunkers of other seeds load theirs before they scan. */
let loaded: GearTables | undefined;

function gearScan(): NonNullable<typeof instance> {
  if (!instance) {
    const module = new WebAssembly.Module(Buffer.from(GEAR_SCAN_WASM, 'base64'));
    const exports = new WebAssembly.Instance(module).exports as unknown as GearScanExports;
    const { buffer } = exports.memory;
    instance = { exports, memory: new Uint8Array(buffer), tables: new Int32Array(buffer, 0, 512) };
  }
  return instance;
}

/**
 * Rolls the gear hash `h` over data[from, to) (gear-scan.wat): the index just past the first byte where
 * (h & mask) == 0, or -1 when there is none, the hash then being `scannedHash()`.
 */
export function scanGear(tables: GearTables, data: Uint8Array, from: number, to: number, h: number, mask: number) {
  const { exports, memory, tables: loadedTables } = gearScan();
  if (loaded !== tables) {
    loadedTables.set(tables.gear, 0);
    loadedTables.set(tables.gearShifted, 256);
    loaded = tables;
  }
  for (let at = from; at < to; at += WINDOW) {
    const end = Math.min(to, at + WINDOW);
    memory.set(data.subarray(at, end), WINDOW_AT);
    const cut = exports.scan(WINDOW_AT, WINDOW_AT + (end - at), h, mask);
    if (cut >= 0) return at + (cut - WINDOW_AT);
    h = exports.hash.value as number;
  }
  lastHash = h;
  return -1;
}

let lastHash = 0;

/** The hash after the last `scanGear` that found no cut. */
export function scannedHash(): number {
  return lastHash;
}
