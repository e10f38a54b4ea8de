// Restored row counts from psql's COPY command tags, paired with the dump's COPY blocks (R-RESTORE).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CopyTags, pairCopyTags } from './copy-tags.ts';

// Shaped like psql's stdout for a dump with a large object, not quiet: tags and a query result.
const output = [
  'SET\nSET\n set_config \n------------\n \n(1 row)\n\n',
  'CREATE TABLE\nALTER TABLE\nCOPY 6600000\n',
  ' lo_create \n-----------\n     16385\n(1 row)\n\n',
  ' ?column? \n----------\n COPY 7\n(1 row)\n\n', // a value that looks like a tag, indented as every value is
  'COPY 0\nCOPYING 3\nCOPY 3 \nCOPY\n',
  `${'x'.repeat(100)}COPY 9\n`,
  'ALTER TABLE\nCOPY 66',
].join('');

function tags(chunks: Buffer[]): number[] {
  const reader = new CopyTags();
  for (const chunk of chunks) reader.write(chunk);
  reader.end();
  return reader.counts;
}

describe('CopyTags', () => {
  test('reads only lines that are exactly a COPY tag, the last one without its newline too', () => {
    assert.deepEqual(tags([Buffer.from(output)]), [6600000, 0, 66]);
  });

  test('gives the same tags whatever the chunk boundaries', () => {
    const bytes = Buffer.from(output);
    for (let split = 0; split <= bytes.length; split++)
      assert.deepEqual(tags([bytes.subarray(0, split), bytes.subarray(split)]), [6600000, 0, 66], `split at ${split}`);
    const bytewise = [...bytes].map((byte) => Buffer.from([byte]));
    assert.deepEqual(tags(bytewise), [6600000, 0, 66]);
  });

  test('a long line is never a tag, however it ends', () => {
    assert.deepEqual(tags([Buffer.from(`COPY ${'1'.repeat(40)}\n`)]), []);
  });
});

describe('pairCopyTags', () => {
  const blocks = (...tables: (string | undefined)[]) => tables.map((table) => ({ table, rows: 0 }));

  test('pairs the tables of the COPY blocks with the tags, in order, summing a table in several blocks', () => {
    assert.deepEqual(pairCopyTags(blocks('public.a', 'My "Sch.Ta ble', undefined, 'public.a'), [3, 0, 5, 66]), {
      objects: [
        { name: 'public.a', records: 69 },
        { name: 'My "Sch.Ta ble', records: 0 },
      ],
    });
    assert.deepEqual(pairCopyTags([], []), { objects: [] });
  });

  test('gives no counts, and says why, when the numbers of tags and blocks differ; never throws', () => {
    for (const [tables, counts] of [
      [['public.a', 'public.b'], [3]],
      [['public.a'], [3, 4]],
      [[], [1]],
    ] as const)
      assert.deepEqual(pairCopyTags(blocks(...tables), [...counts]), {
        objects: [],
        problem: `psql ran ${counts.length} COPY commands but the dump reader found ${tables.length} COPY blocks, so the restored row counts cannot be told`,
      });
  });
});
