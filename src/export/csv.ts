/**
 * RFC 4180 CSV: fields separated by `,`, records ended by CRLF, a field quoted when it holds `,`, `"`,
 * CR or LF (a `"` inside doubled). A SQL NULL is an empty unquoted field, an empty string `""`: the
 * distinction PostgreSQL's `COPY ... (FORMAT csv)` and most CSV readers make. A field that is exactly
 * `\.` is quoted too: unquoted, PostgreSQL's COPY FROM reads it as the end of the data.
 */

/** A field: its bytes (UTF-8 text, or hex text for binary values), or null for SQL NULL. */
export type CsvField = Buffer | null;

const COMMA = 0x2c;
const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE_BYTES = Buffer.from('"');
const DOUBLED_QUOTE = Buffer.from('""');
const COMMA_BYTES = Buffer.from(',');
export const CRLF = Buffer.from('\r\n');
const END_OF_DATA = Buffer.from('\\.');

function needsQuotes(field: Buffer): boolean {
  if (field.length === 0 || field.equals(END_OF_DATA)) return true;
  for (const byte of field) if (byte === COMMA || byte === QUOTE || byte === CR || byte === LF) return true;
  return false;
}

function quoted(field: Buffer): Buffer[] {
  const parts: Buffer[] = [QUOTE_BYTES];
  let at = 0;
  for (let quote = field.indexOf(QUOTE); quote !== -1; quote = field.indexOf(QUOTE, at)) {
    parts.push(field.subarray(at, quote), DOUBLED_QUOTE);
    at = quote + 1;
  }
  parts.push(field.subarray(at), QUOTE_BYTES);
  return parts;
}

/** One CSV record, CRLF-terminated. */
export function csvRecord(fields: readonly CsvField[]): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((field, i) => {
    if (i > 0) parts.push(COMMA_BYTES);
    if (field === null) return;
    if (needsQuotes(field)) parts.push(...quoted(field));
    else parts.push(field);
  });
  parts.push(CRLF);
  return Buffer.concat(parts);
}

/** The header record: column names are never NULL, and an empty name (impossible in SQL) would still read back. */
export function csvHeader(columns: readonly string[]): Buffer {
  return csvRecord(columns.map((column) => Buffer.from(column)));
}
