import { createRequire } from 'node:module';
import { TidemarkError } from '../../errors.ts';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(value: string | undefined): OutputFormat {
  const format = value ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format))
    throw new TidemarkError('InvalidArgument', `-o ${format}: use json or yaml (or leave it out for a table)`);
  return format as OutputFormat;
}

/** Columns padded to the widest cell and three spaces apart, as kubectl prints them. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
    .concat(rows.length ? '\n' : '');
}

/**
 * Machine-readable output: exactly `value`, as JSON or YAML. The YAML library is loaded when first asked for:
 * loaded with the CLI it costs every command ~8 MiB of memory, a backup's included.
 */
export function formatData(value: unknown, format: 'json' | 'yaml'): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  const { stringify } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return stringify(value);
}
