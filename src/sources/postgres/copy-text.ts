import type { CsvField } from '../../export/csv.ts';

const TAB = 0x09;
const BACKSLASH = 0x5c;
const SIMPLE_ESCAPES: Record<number, number> = {
  98: 0x08, // \b
  102: 0x0c, // \f
  110: 0x0a, // \n
  114: 0x0d, // \r
  116: 0x09, // \t
  118: 0x0b, // \v
};

/**
 * The fields of one line of COPY text format (without its newline), as PostgreSQL's COPY FROM reads
 * them: tab-separated, `\N` is NULL, and backslash sequences (`\b \f \n \r \t \v`, `\` + 1-3 octal
 * digits, `\x` + 1-2 hex digits, `\` + any other character for that character) decode to bytes. pg_dump
 * writes the dump in UTF-8, so the bytes are UTF-8 text; a bytea value is its text form (`\x0a0b`).
 */
export function copyTextFields(line: Buffer): CsvField[] {
  const fields: CsvField[] = [];
  let start = 0;
  for (;;) {
    const tab = line.indexOf(TAB, start);
    const end = tab === -1 ? line.length : tab;
    fields.push(decodeField(line.subarray(start, end)));
    if (tab === -1) return fields;
    start = tab + 1;
  }
}

function decodeField(raw: Buffer): CsvField {
  if (raw.length === 2 && raw[0] === BACKSLASH && raw[1] === 0x4e) return null; // \N
  if (!raw.includes(BACKSLASH)) return raw;
  const out = Buffer.allocUnsafe(raw.length);
  let length = 0;
  let at = 0;
  while (at < raw.length) {
    const byte = raw[at++] as number;
    if (byte !== BACKSLASH || at === raw.length) {
      out[length++] = byte;
      continue;
    }
    const next = raw[at++] as number;
    if (next in SIMPLE_ESCAPES) out[length++] = SIMPLE_ESCAPES[next] as number;
    else if (isOctal(next)) {
      let value = next - 0x30;
      for (let digits = 1; digits < 3 && at < raw.length && isOctal(raw[at] as number); digits++)
        value = value * 8 + ((raw[at++] as number) - 0x30);
      out[length++] = value & 0xff;
    } else if (next === 0x78 && at < raw.length && hexValue(raw[at] as number) >= 0) {
      let value = hexValue(raw[at++] as number);
      if (at < raw.length && hexValue(raw[at] as number) >= 0) value = value * 16 + hexValue(raw[at++] as number);
      out[length++] = value;
    } else out[length++] = next;
  }
  return out.subarray(0, length);
}

function isOctal(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x37;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}
