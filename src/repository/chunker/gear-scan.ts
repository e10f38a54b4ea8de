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

function gearScanModule(): NonNullable<typeof instance> {
  if (!instance) {
    const module = new WebAssembly.Module(Buffer.from(GEAR_SCAN_WASM, 'base64'));
    const exports = new WebAssembly.Instance(module).exports as unknown as GearScanExports;
    const { buffer } = exports.memory;
    instance = { exports, memory: new Uint8Array(buffer), tables: new Int32Array(buffer, 0, 512) };
  }
  return instance;
}

/** The rolling gear hash of one chunker, rolled by gear-scan.wat (one module per thread, shared by all chunkers). */
export class GearScan {
  /** The hash over the bytes of the current chunk scanned so far; the chunker sets it to 0 at each chunk start. */
  hash = 0;

  constructor(private readonly tables: GearTables) {}

  /** Rolls the hash over data[from, to): the index just past the first byte where (hash & mask) == 0, or -1. */
  scan(data: Uint8Array, from: number, to: number, mask: number): number {
    const { exports, memory, tables } = gearScanModule();
    if (loaded !== this.tables) {
      tables.set(this.tables.gear, 0);
      tables.set(this.tables.gearShifted, 256);
      loaded = this.tables;
    }
    for (let at = from; at < to; at += WINDOW) {
      const end = Math.min(to, at + WINDOW);
      memory.set(data.subarray(at, end), WINDOW_AT);
      const cut = exports.scan(WINDOW_AT, WINDOW_AT + (end - at), this.hash, mask);
      if (cut >= 0) return at + (cut - WINDOW_AT);
      this.hash = exports.hash.value as number;
    }
    return -1;
  }
}
