import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isCode } from '../errors.ts';
import {
  CODEC_BROTLI,
  CODEC_NONE,
  CODEC_ZSTD,
  type Codec,
  compress,
  crc32,
  crc32Js,
  decompress,
  defaultCodec,
  nativeZstd,
} from './compression.ts';

const MiB = 1024 * 1024;

function randomData(length: number, label = 'random'): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** SQL-dump-like text with some entropy: compresses well but not trivially. */
function sqlText(length: number): Buffer {
  const noise = randomData(length / 8, 'sql');
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; total < length; i++) {
    const n = noise.readUInt32LE((i * 4) % (noise.length - 4));
    const line = `INSERT INTO orders VALUES (${i}, 'customer-${n % 5000}', ${(n % 100000) / 100}, '2024-${1 + (n % 12)}-${1 + (n % 28)}', 'note ${n.toString(36)}');\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, length);
}

/** fixtureText() compressed by Node 22's node:zlib (codec 1: zstd frame || crc32(frame)). */
const ZSTD_FIXTURE =
  'KLUv/QBIDVAA+tVAGBagJYV0/2O5LFW1zt5SSpnSpiRVlTgEngGFAWgBgvRaqEBQOa+VKxhiymvkCsLPvzamoBX6NDEFHsKedlPwGobTbApkiMO0moJ5UZgWTAFVsEwbpaCGIJkmSoGowTGtSsEYSmkUKAhSPtBmTFCbHjMREzicFbPXBBdncM1MEwgJB806E4wMxcxCZQIysWRWn6BCkTojTyBEcTobTzBIUDoTTxBm8J3dEvR0ZbYEbllZLcFHGSoLlkDKHLJRCWZOIROVgC4sWVWC6pBkVAnEGI5sKsEoosikEgQqyt4HFcHPfWAP9uuDM3zhgQjSv/KDoXL+kR+QmPJv/KB8/p/4gQhC/7sfDCHsP/tBqGH4VzvoEIe9YAd+UdgbdfAKlj1RBzIEyV7VwdTg2KM6oKHYmzqol7cndSBq2t7rYAyz9lwHQZzBXhuUhKNdaGAZinblBjex2pEbSChSu3GDEcVpJ25AJCjt7gYlg29nNxCm3bUNRijbBTcIowwN3RhByxxjQgSeU4hVBb+wakSBdEi0mWDGcGYiARVRZH9QU/xnB+KC9tpgdLBd6MCEAXEwQxAYBgAYQKCAAAEMIIAhNe2uetYd9QzupsLRTjoU7V5itXOL1K7FaRcEpV158O3IdLtx2XZiM3S62xydfYquFlYXPKRulDidKFG6avEdVdDddLCTMnQv6Z1bzrua8i6cf1cW+h1Z2HfjYXgnJg53d1F0tmC5q8MguQseHHejFHei5d1VTbujnnU3PYM7qXC0e4einUusdi1Su1CcdmVBaUcefLsx3U5ctt1dhna2Obr6FF2wsLrRIXWixOmqROmoxXdTQXfSwbZ7GTqX9HYt56ELpjx05fMPHVnoh24s7EMnHoaH7iYOh84uCoeuFiyHLjgMkkM3OoKKwRljQozARBFjVSO4lK8xohGITdPYzAgmnJ0xkRGQOINl7B9BkXB8zB6BkKHwWDuCYWJ1LDSMILRIYayGCDqKM8RIiMAlKEJsSgSfwVdMLAI5XbFbBNOyYrYIaJShItaLoMocFwu2CMScwmKjIhgXVsVEEEHwkIJYjQoaiDNqJCqwIIqoTVVwKr5qQhWICNbeCsaDrbkVEEOtFVSeeHDs3RR7dnl7tWl7wWftjQqDPVHhqFcdinpUYtWbFqmeVHDqvYJSzx18vdL1Qtl6ZTPUI5vDG5/CEwvLu4fk2cTxaqJ4wcV7o4L2RAe9KoNHLenetJx7UlPuvefvuULf67D3wjDcKxOHPXJReGPBsiceJHv34NizKfbq8vaCTdsbPWtP9Az2qsJRjzoU9abEqictUr1XcOq5glKvg68X6HrlsvXIZqg3NocnPoV3C8uzh+TVxPGCieKNFu+JCtqrDnpUBm9Kuict595ryj33/L0KfS8Me688DPfIxGFvXBSeWLDsfZDs2YNjr6bYCy5vb9S0PdGz9qpnsEcVjnrToagnJVa9t0j1XMGpV0FpFwbfrky3I5dtNzZDO7E5uvsUo7OF1dVD6oKJ040SpRMtvqsKuqMOdlOGTkp695bzzjXlXc+/C0K/Kw/7jjwM78bE4U5cFN0tWO7sMEju6sFxF0xxN1renQh7icOfWxRfBctfGCR/ZY4/MsXfuLw/sWl/91l/tjD4q4WjX/BQ9BslVj/RIvWrCk4/qqD0mw6+n5Tu95bt55qhX8/xhVN8ZWF95CF9Y+J84qJ8d/GfLeivHvyCGb7Rkv6JlvOvaso/6vl/U6H/SYf99w7DP5c4/LUoviBY/mqQ/BHH35jiT1ze323an33WXy0M/oKFo9/oUPQTJVa/apH6UQWn31RQ+kkH3++l+7ll+9UM/YI5vvIpPrKwvvGQPjFxvrson138Vwv6Cx78Rhk+0ZL+Vcv5RzXl3/T8P6nQ/95h/7nD8K/E4S8UxVcWLH/kQfI3Hhx/Yoq/u7w/27S/+qy/YGHwNyoc/USHol+VWP2oReo3FZx+UkHp9w6+n0v3a9l+wQz9yub4yKf4xsL6xEP6buJ8dlG+ungvWNDe6KAnyuBVS7pHLefe1JR70vP3XqHvucPe6zDcC8Rhr1wUHlmw7I0HyQGDHqgSaIBhk1Tb34IMChFSQr0DEliB5Hkh/Rvt02gxn9Gpx6gWbTaPTjNGI71NdhvzdHdaRvkwOtiDhYxaSo2S3igNR7d1tLZHeT66DNJz2C8IqZoY6STSPKSjIOU+WvPosKPmIkefto2m0AQbRxlrFF3pNJ7eud21Nlqk0cIvev1GVeaoSEebPPr6o15Aeh/SUCLF7rZgpJ1KSQGSNkd6iNQZ0juQwuijDr1HSXV05WhHo6QzCojm9Vb49e5N0ShXMwpON1UapWKjceXoaXVUWY+mzUcPg5RTSMMZ2hNpeZL0dKS+SKMhjYFUhB/dBh5t7CgOjnY2GsyoSYxuDZze+EywiGBGTSFGaTUiyiiQRk9u9BmObneUk0f5P6ocpH/QLwgp2xipJdI4pIMgpeNHv9Sjqo5CcHTfjQ41CmG0josKez6a3LJ8zmvC6Nh50YIkY/TUjOppNHKj5XBUuaN3eZT/o/KW5IG0RKQ1Iw1EGoTUXEDK149q8ajQ0SKOXrpRp1Gq4k6ki8LNolBmYK8dw3a7nPu12kVpi1pFR4qqokiKwia6JGoT1SQaIZuuRG2iDYk2UbJEm+hLopqoLtFP1C9RTvRBJ9EHEd2JQon6iSZRH1GCaH2oyaG0oTqGfqGjUE0oECoPikF5QQuCHgMVgSqgZQnQ6if4Gfsc9Ml9mvRpzWeKz8l7AvaE1bNOT/p5mpg8O4vn4DnvRO4U7+zcmds5YUw+O9lOn51qZ52dbSfHzm3nZqe302Fn2+mzU+3M2EntxEWws2Cdtp2UndlOsRNfp0udM509dOqcZE4pp8lJxllxbjgFnPpmz5u7m4Sb3eYGa1PXFGtGNQU1vZotah7TnKR5NpocNI9nPnEmNZrZFzMll6kyTTJzZCaZAjLfjkmN+cf8jalj+sb0YzJj4mO2MfcxhTH1mLExc0zImHfMaUysXpKrxQwylWNymu6YJidATL9tEoPJ+Zvqvqz+pnqXot+Ui8vyb5prKftNnbIs/6b5lbLf1D0ri6qp05le43owo/69ZroNo0pNa5VXSsEyp36pGgFeOIyLhKJE16RgqqHE1v7imFFjg9pA4kUKUJsU6iVTd7Ms2fS/nas/Zidtm0VKfU348brJtL5Pm2zs1UaVLWVLdZxtRQSlkB6UR1Ffo+66dlx0PSUqGsDSQZDHQuysh1aPiU6ri5AVb7R25yiqjrSUuyTUIplC6yKn6eqc9ZB4Kvywnv02Dap1s8E0RM+aJvDD3EscM3Wj1JKkzlE/jXqJuh1qGtQtoJ5Pb3o6djqj08dpNW9C403QGa1lhiEsKdg7EU30CUVTnbGoeOegEAM2nF5RaAUUx+38';
function fixtureText(): Buffer {
  return Buffer.from(
    Array.from(
      { length: 400 },
      (_, i) => `${i},customer-${i % 37},${(i * 7919) % 1000}.${i % 100},2024-05-${10 + (i % 18)}\n`,
    ).join(''),
  );
}

/** A stream with a valid CRC trailer, as compress would store it. */
function framed(stream: Buffer): Buffer {
  const out = Buffer.alloc(stream.length + 4);
  stream.copy(out);
  out.writeUInt32LE(crc32(stream), stream.length);
  return out;
}

/** Truncated or bit-flipped copies of `data` compressed with `codec` are all Corrupt, with and without a length. */
async function rejectsDamaged(codec: Codec, data: Buffer): Promise<void> {
  const stored = await compress(data, codec);
  assert.equal(stored.codec, codec);
  const truncated = [
    stored.data.subarray(0, stored.data.length - 1),
    stored.data.subarray(0, stored.data.length / 2),
    stored.data.subarray(0, 3),
    Buffer.alloc(0),
  ];
  for (const bad of truncated) await assert.rejects(decompress(codec, bad, data.length), (e) => isCode(e, 'Corrupt'));
  for (let t = 0; t < 40; t++) {
    const bad = Buffer.from(stored.data);
    const at = Math.floor(((t * 2654435761) >>> 0) % bad.length);
    bad[at] = (bad[at] as number) ^ (1 << (t % 8));
    await assert.rejects(decompress(codec, bad), (e) => isCode(e, 'Corrupt'), `flipped byte ${at}`);
    await assert.rejects(decompress(codec, bad, data.length), (e) => isCode(e, 'Corrupt'), `flipped byte ${at}`);
  }
}

const writable: Codec[] = nativeZstd ? [CODEC_ZSTD, CODEC_BROTLI] : [CODEC_BROTLI];

describe('compress / decompress', () => {
  it('writes zstd where node:zlib has it, brotli otherwise', () => {
    assert.equal(defaultCodec(), nativeZstd ? CODEC_ZSTD : CODEC_BROTLI);
  });

  for (const codec of writable) {
    it(`round-trips codec ${codec}: empty, small, 5 MiB text, random`, async () => {
      const small = [Buffer.alloc(0), Buffer.from('hello, hello, hello'), Buffer.from('tidemark '.repeat(30))];
      for (const data of [...small, sqlText(5 * MiB), randomData(MiB)]) {
        const stored = await compress(data, codec);
        assert.ok(stored.codec === codec || stored.codec === CODEC_NONE);
        assert.ok((await decompress(stored.codec, stored.data, data.length)).equals(data));
        assert.ok((await decompress(stored.codec, stored.data)).equals(data));
      }
    });

    it(`compresses text with codec ${codec} and saves most of it`, async () => {
      const data = sqlText(5 * MiB);
      const stored = await compress(data, codec);
      assert.equal(stored.codec, codec);
      assert.ok(stored.data.length < data.length / 3, `${stored.data.length} of ${data.length} bytes`);
      assert.equal((await compress(Buffer.from('tidemark '.repeat(30)), codec)).codec, codec);
    });

    it(`stores incompressible data with codec 0 (codec ${codec} asked)`, async () => {
      for (const data of [randomData(MiB), randomData(100 * 1024), randomData(1000), Buffer.from('tiny')]) {
        const stored = await compress(data, codec);
        assert.equal(stored.codec, CODEC_NONE);
        assert.equal(stored.data, data);
      }
    });

    it(`stores with codec 0 when saving is under 1/16 (codec ${codec})`, async () => {
      // 1/32 compressible (zeros), the rest random; the large one is settled by the probe.
      for (const length of [200 * 1024, MiB]) {
        const data = Buffer.concat([Buffer.alloc(length / 32), randomData(length - length / 32)]);
        assert.equal((await compress(data, codec)).codec, CODEC_NONE, `${length} bytes`);
      }
      // 1/8 compressible: worth it.
      const data = Buffer.concat([Buffer.alloc(25 * 1024), randomData(175 * 1024)]);
      assert.equal((await compress(data, codec)).codec, codec);
    });

    it(`rejects truncated and damaged codec ${codec} data, never returning wrong bytes (small and large chunks)`, async () => {
      // 4 KiB is decoded on the calling thread, 1 MiB on the thread pool.
      for (const data of [sqlText(4096), sqlText(MiB)]) await rejectsDamaged(codec, data);
    });

    it(`rejects codec ${codec} data that passes the CRC but does not decode`, async () => {
      for (const garbage of [randomData(1000, 'garbage'), Buffer.alloc(0), Buffer.from('not a stream at all')]) {
        await assert.rejects(decompress(codec, framed(garbage)), (e) => isCode(e, 'Corrupt'));
        await assert.rejects(decompress(codec, framed(garbage), 5000), (e) => isCode(e, 'Corrupt'));
      }
    });

    it(`rejects codec ${codec} data of another length than expected`, async () => {
      const data = sqlText(64 * 1024);
      const stored = await compress(data, codec);
      await assert.rejects(decompress(codec, stored.data, data.length - 1), (e) => isCode(e, 'Corrupt'));
      await assert.rejects(decompress(codec, stored.data, data.length + 1), (e) => isCode(e, 'Corrupt'));
    });
  }

  it('reads zstd written by node:zlib on every runtime (fzstd where node:zlib lacks zstd)', async () => {
    const text = fixtureText();
    const stored = Buffer.from(ZSTD_FIXTURE, 'base64');
    assert.ok((await decompress(CODEC_ZSTD, stored, text.length)).equals(text));
    assert.ok((await decompress(CODEC_ZSTD, stored)).equals(text));
    const bad = Buffer.from(stored);
    bad[100] = (bad[100] as number) ^ 0x10;
    await assert.rejects(decompress(CODEC_ZSTD, bad, text.length), (e) => isCode(e, 'Corrupt'));
    await assert.rejects(decompress(CODEC_ZSTD, stored.subarray(0, 1000), text.length), (e) => isCode(e, 'Corrupt'));
    // A stream cut short before its CRC was taken, and garbage with a valid CRC.
    const frame = stored.subarray(0, stored.length - 4);
    await assert.rejects(decompress(CODEC_ZSTD, framed(frame.subarray(0, 1000)), text.length), (e) =>
      isCode(e, 'Corrupt'),
    );
    await assert.rejects(decompress(CODEC_ZSTD, framed(randomData(1000, 'garbage'))), (e) => isCode(e, 'Corrupt'));
  });

  it('refuses to write zstd where node:zlib lacks it', { skip: nativeZstd }, async () => {
    await assert.rejects(compress(sqlText(MiB), CODEC_ZSTD), (e) => isCode(e, 'Unsupported'));
  });

  it('stores as is with codec 0 when asked', async () => {
    const data = sqlText(MiB);
    const stored = await compress(data, CODEC_NONE);
    assert.deepEqual(stored, { codec: CODEC_NONE, data });
    assert.equal(await decompress(CODEC_NONE, data, data.length), data);
    await assert.rejects(decompress(CODEC_NONE, data, data.length + 1), (e) => isCode(e, 'Corrupt'));
  });

  it('rejects unknown codec ids, naming the id', async () => {
    for (const codec of [3, 7, 255]) {
      await assert.rejects(
        decompress(codec, Buffer.from('abcdefgh')),
        (e) => isCode(e, 'Unsupported') && (e as Error).message.includes(`codec ${codec}`),
      );
      await assert.rejects(compress(Buffer.from('abcdefgh'), codec as Codec), (e) => isCode(e, 'Unsupported'));
    }
  });

  it('compresses several chunks in parallel', async () => {
    const chunks = [0, 1, 2, 3].map((i) => sqlText(MiB + i));
    const stored = await Promise.all(chunks.map((c) => compress(c)));
    const back = await Promise.all(stored.map((s, i) => decompress(s.codec, s.data, chunks[i]?.length)));
    for (const [i, b] of back.entries()) assert.ok(b.equals(chunks[i] as Buffer));
  });
});

describe('crc32', () => {
  it('is the IEEE CRC-32, native and fallback alike', () => {
    assert.equal(crc32Js(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32Js(Buffer.alloc(0)), 0);
    const data = randomData(100_000, 'crc');
    assert.equal(crc32Js(data), crc32(data));
  });
});
