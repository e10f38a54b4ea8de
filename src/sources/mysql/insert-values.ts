import { TidemarkError } from '../../errors.ts';
import type { CsvField } from '../../export/csv.ts';

const QUOTE = 0x27;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const ESCAPES: Record<number, number> = {
  48: 0x00, // \0
  98: 0x08, // \b
  110: 0x0a, // \n
  114: 0x0d, // \r
  116: 0x09, // \t
  90: 0x1a, // \Z
};

/**
 * The values of one tuple of a mariadb-dump INSERT (the text between its parentheses), as the server
 * would store them: NULL is null; a string literal (`'...'`, optionally after a character-set
 * introducer such as `_binary`) is unescaped as MariaDB does (`\0 \b \n \r \t \Z`, `\%` and `\_` keep
 * their backslash, `\` + any other character is that character, `''` is `'`); a hex literal
 * (`0x0A0B`, what --hex-blob writes for binary columns) becomes `\x0a0b`, the text form PostgreSQL uses
 * for bytea; anything else (numbers) is its text as written. The dump is utf8mb4, so text is UTF-8.
 */
export function insertValues(tuple: Buffer): CsvField[] {
  const values: CsvField[] = [];
  let at = 0;
  const skipSpace = () => {
    while (at < tuple.length && (tuple[at] as number) <= 0x20) at++;
  };
  for (;;) {
    skipSpace();
    const introducer = /^_[A-Za-z0-9]+\s*'/.exec(tuple.subarray(at, at + 40).toString('latin1'));
    if (introducer) at += introducer[0].length - 1;
    const byte = tuple[at];
    if (byte === QUOTE || byte === DQUOTE) {
      const literal = readString(tuple, at);
      values.push(literal.value);
      at = literal.end;
    } else {
      let end = tuple.indexOf(COMMA, at);
      if (end === -1) end = tuple.length;
      const text = tuple.subarray(at, end).toString('latin1').trim();
      values.push(bareValue(text, tuple));
      at = end;
    }
    skipSpace();
    if (at >= tuple.length) return values;
    if (tuple[at] !== COMMA) throw unreadable(tuple, `expected a comma at byte ${at}`);
    at++;
  }
}

function bareValue(text: string, tuple: Buffer): CsvField {
  if (/^NULL$/i.test(text)) return null;
  if (/^0x[0-9A-Fa-f]*$/.test(text)) return Buffer.from(`\\x${text.slice(2).toLowerCase()}`);
  if (text === '') throw unreadable(tuple, 'an empty value');
  return Buffer.from(text, 'latin1');
}

function readString(tuple: Buffer, start: number): { value: Buffer; end: number } {
  const quote = tuple[start] as number;
  const out = Buffer.allocUnsafe(tuple.length - start);
  let length = 0;
  let at = start + 1;
  while (at < tuple.length) {
    const byte = tuple[at++] as number;
    if (byte === quote) {
      if (tuple[at] !== quote) return { value: out.subarray(0, length), end: at };
      out[length++] = quote;
      at++;
    } else if (byte === BACKSLASH && at < tuple.length) {
      const next = tuple[at++] as number;
      if (next === 0x25 || next === 0x5f) out[length++] = BACKSLASH; // \% and \_ keep the backslash
      out[length++] = ESCAPES[next] ?? next;
    } else out[length++] = byte;
  }
  throw unreadable(tuple, 'a string literal without its closing quote');
}

function unreadable(tuple: Buffer, problem: string): TidemarkError {
  return new TidemarkError(
    'Corrupt',
    `cannot read an INSERT row of the dump (${problem}): ${tuple.subarray(0, 120).toString('utf8')}`,
  );
}
