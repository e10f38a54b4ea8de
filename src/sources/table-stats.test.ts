// Table statistics recorded by database backups (issue 13: drills and audits compare with them).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  chooseTimestampColumn,
  FieldPicker,
  integerKey,
  Murmur128,
  RowDigest,
  TableTally,
  timestampColumnsFrom,
  timestampOrder,
} from './table-stats.ts';

describe('timestampOrder', () => {
  test('orders PostgreSQL and MariaDB timestamps as instants', () => {
    const ordered = [
      '-infinity',
      '0044-03-15 12:00:00 BC',
      '0000-00-00 00:00:00',
      '0001-01-01',
      '1969-12-31 23:59:59.999999',
      '1970-01-01 00:00:00',
      '2024-01-01 10:00:00+02', // 08:00 UTC
      '2024-01-01 09:00:00',
      '2024-01-01 09:30:00-00:15', // 09:45 UTC
      '2024-01-01 09:45:00.000001',
      '12024-01-01 00:00:00',
      'infinity',
    ];
    const orders = ordered.map((t) => timestampOrder(t));
    for (let i = 1; i < orders.length; i++)
      assert.ok((orders[i - 1] as bigint) < (orders[i] as bigint), `${ordered[i - 1]} < ${ordered[i]}`);
    assert.equal(timestampOrder('1970-01-01 00:00:01'), 1_000_000n);
  });

  test('is undefined for what is not a timestamp', () => {
    for (const text of ['', '\\N', 'NULL', '2024', 'yesterday', '2024-01-01x'])
      assert.equal(timestampOrder(text), undefined);
  });
});

test('integerKey reads decimal integers only', () => {
  assert.equal(integerKey('-9223372036854775808'), -9223372036854775808n);
  assert.equal(integerKey('18446744073709551615'), 18446744073709551615n);
  for (const text of ['', '\\N', '1.5', '1e3', '0x10', 'abc']) assert.equal(integerKey(text), undefined);
});

test('chooseTimestampColumn: the named one, the only one, a preferred name, else none', () => {
  assert.equal(chooseTimestampColumn(['a', 'b'], 'z'), 'z');
  assert.equal(chooseTimestampColumn(['stamp'], undefined), 'stamp');
  assert.equal(chooseTimestampColumn(['created_at', 'Updated_At'], undefined), 'Updated_At');
  assert.equal(chooseTimestampColumn(['a', 'b'], undefined), undefined);
  assert.equal(chooseTimestampColumn([], undefined), undefined);
});

test('Murmur128 is MurmurHash3_x86_128 with seed 0, fed whole or in pieces', () => {
  // The 16 output bytes (h1..h4, each little-endian), as smhasher's reference and Python's mmh3 give them.
  const vectors: [Buffer, string][] = [
    [Buffer.from(''), '00000000000000000000000000000000'],
    [Buffer.from('a'), '3c9394a71bb056551bb056551bb05655'],
    [Buffer.from('1\tabc'), 'e0ff5e0d8f3ec485a4427baea4427bae'],
    [Buffer.from('hello'), 'a044242bf7de91dbb631db9ab631db9a'],
    [Buffer.from('0123456789abcdef'), '09447dfb0ad3ae369b1dad48fd3b2b57'],
    [Buffer.from('0123456789abcdef0'), '55388a1f060c92601c2f18b59c0b8c71'],
    [Buffer.from('☃ (tab\there)'), 'c01a6f8d31f9e6b1cc672b5f1133f4db'],
    [Buffer.from(Array.from({ length: 40 }, (_, i) => i)), 'a96edd71e3e6d933da5cb10acf0d09a9'],
  ];
  const murmur = new Murmur128();
  for (const [bytes, expected] of vectors)
    for (let split = 0; split <= bytes.length; split++) {
      murmur.update(bytes, 0, split);
      murmur.update(bytes, split, bytes.length);
      const { h1, h2, h3, h4 } = murmur.finish();
      const out = Buffer.alloc(16);
      for (const [i, h] of [h1, h2, h3, h4].entries()) out.writeUInt32LE(h, i * 4);
      assert.equal(out.toString('hex'), expected, `${bytes.toString('hex')} split at ${split}`);
    }
});

test('RowDigest: parts of a row hash like the whole row; merging adds', () => {
  const whole = new RowDigest();
  whole.add(Buffer.from('1\tabc'));
  const parts = new RowDigest();
  parts.addPart(Buffer.from('1\ta'));
  parts.addPart(Buffer.from('bc'));
  parts.endRow();
  assert.equal(parts.hex(), whole.hex());
  const both = new RowDigest();
  both.add(Buffer.from('1\tabc'));
  both.add(Buffer.from('1\tabc'));
  const merged = new RowDigest();
  merged.merge(whole);
  merged.merge(parts);
  assert.equal(merged.hex(), both.hex());
});

test('TableTally keeps the integer key range numerically and the text of the newest timestamp', () => {
  const tally = new TableTally('t', { key: 'id', timestamp: 'at' });
  for (const [id, at] of [
    ['9', '2024-01-01 00:00:00+00'],
    ['10', '2024-01-01 01:00:00+02'],
    ['-1', '\\N'],
  ] as const)
    tally.fields(id, at);
  assert.deepEqual(tally.count('t').key, { column: 'id', min: '-1', max: '10' });
  assert.deepEqual(tally.count('t').newest, { column: 'at', value: '2024-01-01 00:00:00+00' });
});

test('FieldPicker finds fields at every split of the row', () => {
  const picked = (picker: FieldPicker) => {
    const fields: [string | undefined, string | undefined] = [undefined, undefined];
    picker.finish({
      key: (bytes, start, end) => {
        fields[0] = bytes.toString('latin1', start, end);
      },
      timestamp: (bytes, start, end) => {
        fields[1] = bytes.toString('latin1', start, end);
      },
    });
    return fields;
  };
  const row = Buffer.from('a\t\t42\tlong text\t2024-01-01 00:00:00\tz');
  for (let split = 0; split <= row.length; split++) {
    const picker = new FieldPicker([2, 4], 0x09);
    picker.feed(row, 0, split);
    picker.feed(row, split, row.length);
    assert.deepEqual(picked(picker), ['42', '2024-01-01 00:00:00'], `split at ${split}`);
  }
  const picker = new FieldPicker([1, 9], 0x09);
  picker.feed(row, 0, row.length);
  assert.deepEqual(picked(picker), ['', undefined], 'an empty field, a field past the end');
  picker.feed(Buffer.from(`x\t${'9'.repeat(65)}`), 0, 67);
  assert.deepEqual(picked(picker), [undefined, undefined], 'a field too long');
});

test('timestampColumnsFrom reads a JSON object of column names, refusing anything else', () => {
  assert.equal(timestampColumnsFrom({}), undefined);
  assert.deepEqual(timestampColumnsFrom({ TIDEMARK_TIMESTAMP_COLUMNS: '{"public.t": "at"}' }), { 'public.t': 'at' });
  for (const text of ['[]', '"x"', '{"t": 1}', '{"t": ""}', 'not json', 'null'])
    assert.throws(
      () => timestampColumnsFrom({ TIDEMARK_TIMESTAMP_COLUMNS: text }),
      /TIDEMARK_TIMESTAMP_COLUMNS must be a JSON object/,
      text,
    );
});

test('TableTally: the key range of any mix of integer texts, as numbers or text, keeps the first of equal values', () => {
  const keys = [
    '7',
    '-0',
    '0',
    '007',
    '+7',
    '123456789012345',
    '1234567890123456',
    '-99999999999999999999',
    '-9',
    '\\N',
  ];
  const expected = (texts: string[]) => {
    let min: string | undefined;
    let max: string | undefined;
    for (const text of texts) {
      const value = integerKey(text);
      if (value === undefined) continue;
      if (min === undefined || value < (integerKey(min) as bigint)) min = text;
      if (max === undefined || value > (integerKey(max) as bigint)) max = text;
    }
    return { column: 'id', min, max };
  };
  for (let rotation = 0; rotation < keys.length; rotation++) {
    const texts = [...keys.slice(rotation), ...keys.slice(0, rotation)];
    const tally = new TableTally('t', { key: 'id' });
    for (const text of texts) {
      const bytes = Buffer.from(`(${text})`);
      tally.key(bytes, 1, bytes.length - 1);
    }
    assert.deepEqual(tally.count('t').key, expected(texts), texts.join(' '));
  }
});

test('TableTally: the newest timestamp read as bytes is the one read as text, in any order', () => {
  const texts = [
    '2024-01-01 00:00:00',
    '2024-01-01 00:00:00.5',
    '2024-01-01 00:00:00.1',
    '2024-01-01 00:00:00.15',
    '2024-01-01 00:29:00+00:30',
    '2023-12-31 23:59:59-00:00:01',
    '2023-12-31 23:59:59.999999-00:00:01',
    '2024-01-01 00:00:00.500000',
    '2024-01-01 00:00:00.1234567',
    '2024-01-01T01:00:00+02',
    '2024-01-01 01:00:00+02:00',
    '2024-01-01 01:00:00+0200',
    '2024-01-01 00:59:59-00:00:30',
    '2024-1-2',
    '2024-01-01Z',
    '0044-03-15 BC',
    '12345-06-07 08:09:10.111111+05:30 BC',
    'infinity',
    '-infinity',
    '2024-01-01 25:61:61',
    '0000-00-00 00:00:00',
    '2024-01-01 1:2',
    '2024-01-01 00:00:0',
    '2024-01-01 00:00:00.',
    '2024-01-01 00:00:00+2',
    '2024-01-01 00:00:00+02:',
    '2024-01-01 BC',
    '2024-01-01 00:00:00.1234567890',
    '1234567890123456-01-01',
    '\\N',
    'NULL',
    '',
  ];
  for (const first of texts)
    for (const second of texts) {
      const order = [first, second];
      const asText = new TableTally('t', { timestamp: 'at' });
      const asBytes = new TableTally('t', { timestamp: 'at' });
      for (const text of order) {
        asText.fields(undefined, text);
        const bytes = Buffer.from(` ${text}9`); // bytes around the field must not be read
        asBytes.timestamp(bytes, 1, bytes.length - 1);
      }
      assert.deepEqual(asBytes.count('t'), asText.count('t'), order.join(' | '));
      if (order.some((text) => text.startsWith('1234567890123456'))) continue; // past timestampOrder's infinity
      const orders = order.map((text) => timestampOrder(text));
      const [a, b] = orders;
      const newest = b !== undefined && (a === undefined || b > a) ? second : a !== undefined ? first : undefined;
      assert.equal(asBytes.count('t').newest?.value, newest, order.join(' | '));
    }
});
