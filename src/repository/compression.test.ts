import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { brotliCompressSync, constants, zstdCompressSync } from 'node:zlib';
import { isCode } from '../errors.ts';
import {
  CODEC_BROTLI,
  CODEC_NONE,
  CODEC_ZSTD,
  type Codec,
  compress,
  compressParts,
  crc32,
  decompress,
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
/** fixtureText() as Tidemark's compress() stored it on Node 20 (codec 2: brotli stream || crc32(stream)). */
const BROTLI_FIXTURE =
  'C/YZAICqqqrq/86ns7iAMst+OwfEMSAAcoHwu4hv5RLVbtbK/XuNi8Hgx8HBrQahI0yUaC7qF1Atlj9zyf979vX/77/fn+8/n2fPn+kpP68+fOC/jyfteM7/IppQ4inbWFeihUg8w6bGI9GBTDzTetoz0YlKPMvqyivRhU4824rpnejGJJ5jGeGT6MEmnmtR8k304hLPMw39En3gufLFZ7znPFmMHniz5UnjO+fVYkTwbPmgTOt/+vy5+Ujg4fLFsMtxni5GAd4uX0zbbuf1YpTg+fLFstlyHjBGBV4wX2ybl84bxqjBI+aLY61wnjFGA94xX1yrlPOS2Q88Zb54lk3nMbMJJV96FvtciaGg5FM03fkfP3+ONQzomPmUTFz/4+e//6gTuma+FMYYV2JYUPKptGrXMWPYUPKlsptyJYYDJV9q20tXYrhQ8qWxZbgSw4OSL61NyJUYPSj50lkXXYkREclXPKt5HomREMlX0HLPIzEKRPIVsnzrkRglIvmKsNB4JEaFSD4jTdn+x8+f/x2jRlwzX1HGLo/EaBDJZ7Rtehwz+yGSf5+FxyWziUg+aSd5HDKGQmR52CY97hjDQGZ52PTzPGMME5lkrvo8rxjDQiYZrF7PI8awkUkmq8fzhjEcZJLRmvbME/4zXGSS2eryvGAMD5lkuDo9Lxijh0zWcnV4HjFGRGZ50kh5XjFGQiaflAU9E6NAJVmuqed1xhglKlnL1ed1xxgVKlnL1et1yBg1KlnL1eN1yRgNKlnL1e11yuyHStZydXndMpuoZC1Xp9cxYyhUsparw+uYMQxU8iVaPHklholKMlkjel0zhoVOslyTz/uaMWx0kuXq8z5mDAedrOXq9T5mDBedrOXq8T5mDA+drOXq9j5mjB46+dLaRHknRkQna7k6vY8ZI6GTtVwd3seMUaCTLNecvI8Zo0QnWa4hvY8Zo8IkWa6J53PMGDUmyWRNns81YzSYZC1Xr881sx8myXL1+Bwzm5jk32ftc8kYCpNkubp8DhnDwGR52Gb63DGGicnysOnwOWMMC5N8pfXKZ5clujFXzGdZP/ocMYaDTT7bSs/3hjFcbJLl6vM9YQwPm2S5en0vGKOHTbJcPb4XjBGxyVqubt8jxkjYLCxXl+8VYxTYJMvV6XvFGCU2WcvV4XvGGBU2yXLNyPeOMWpskuWao+8hYzS4JMs1fH6XzH64ZC1Xn98ps4lL1nL1+t0yhsIla7l6/I4Zw8Ala7m6/Y4Zw8Qla7m6/I4Zw8Ila7k6/a4Zw8Yla7k6/K4Zw8Eln0pr+R0zhotLslyz9DtmHD59f36v+Vdt97Cy8PR93jWzpkte4en7vGtmTZfI8lcC3zWzpktq4fH7vGtmTZfgwuP3edfMmi7Zhcfv866ZNV3iC4/f510za7okGB6/z7tmMl0XxHCL33MyXRfHNEHILCeu+ZFjhgIhs3yfKWYdBsiY9WuXbZigY5aWLWO2YYGOWTpsGLMNG3TMwn6ZMcMBHbMwYGbMcEHHLCyYGUOn5JgeS8ZsdEqO6bVgzEan5Jg+E2M2OiXH1IrZMZRKkDmcsY8hQ6skGXbMkKFVkkwNmSlDrWSZWjJbhl4JMzVlF8z0AzWz1Jad0MzKRX67yZhdOEO15BnW7OIZ2iXQMGcX0FAviab2zKKhXyJNDZpJQ8Fkmlo0m2Y4IGqWmjSjhopJNWyaUUPFpJoaNbOGjsk1NWonaLNQMtmGVbvghpZZN702vNlomXzDrl2AQ8sknBo2E4eayTi1bN915CQ1k3Jq2swcaibn1LZdoNMPlM5S43ahThO0zlLrdhI7CzWTdpg3Y4eWSTvfZ9bZ6Jix87XLRsWknZYtdjYaJu2wb8YOBZN22Ddjh35JO+ybsUO/Tv1VlN1W2Nmol7TDvhk7tEvaYd++6dhJyiXtsG/GDt2Sdv79GUzaoVviDvt24c7Rb1Gf37/WD399+Ig7VEveqX0zeKiWxFP7dhFPP5A8S+3bhTxN0DxL7ZvNQ7WEntq3U+hZ6JbUU/tm9dAusaf2zeyhXnIP+3ZxD/0SfNi3C3womOTDvl3kQ8NEn9o304eKyT7sm+lDxWSf2jfjh45JP7VvBtBIoICW2jcTiJadeVzKo337GEG0TAqqfTODaJkcxL5dIETNJKEJWlFoo2ayEPt2w1A/UENL7duFQ03QQ0vtm0FEzSSi2jeTiJrJROybSUTLZKLvMxFtdMwk+tplo2Jnnz+TfTOJaJhM1GFDoo2CyUSd1iTahgeaaOmyJtFGv2Qi9s0kol4yEftmEtEumYh9M4kol0zEvplEdOvck3zWvp0y0UK3hKLaN6OIbklF7JtRRLWkIvbtxiLO8fswz77dXNSEsgzLNis/pMtFNW9yET+ky0W1bnIRP6TLRTVuchE/pMtFtW1y0bChLDVtctFwoCy1bHIRv6TLRTVschG/pMtF7JpdxC/pclErjUXriFAWVu3ioqNXEh8JEziZRqOAstSqXV7vdEI2Wlm1y/udLghHS63a5QVPN6SjpVbNPBoNlKVW7eKjflCWWrULkLjJ7wM9q3YREu2SkFi1C5Gol4jEql2MRL9kJFbNRKJfItL32VuevRsC0vq1y0a9BCRWzT6iXvIRq2YeUS/xiFWzjqiXdMSqGUf0SzjqtrLRRr1kox5LGm20SzTqtZDRRrkkI1bNMKJbglGtmmFEtwSjWjXDiG4JRqzaxUX9oCy1ahcYNaEstWon3/WsLQhGS62aYUS1BCNm7QIjqiUYsWsXGNEtwYhhu8CI4RKMatkMI+olGNW0nYXRQr8Eo9o2w4iCCUY1boYRDROMat0MIyomGDFvdhEVk4tq3wwjOiYYsW8XGlEy0Yh9u9iIlp16nk+e2C44omXCUe2bdUTLpKPatwuP+kFZat8uPmpCWWrfLm+CWhCQlto3C4maSUi1byYSNRORat9spMObfLSi3UYjbdRMRvo+E9JGyfQ2qGknpI2OSUgtWyBtVExAYuDsIxomHzFw5hEFE48YOOuIgklHDJxxRL+EIwbONqJepx88k4EzjWiXaNRnktFGuSQjBu7wddDWA8loYeBuMuoHZWHgLjBqQllq4CwjuiUZ1cBZRnRLMqqBs4zolmRUA2cZ0a0zMsoaOMuIbklGNXCWEe2SjBi4i4yol2Q0epbZ6JdkxMBdZETBJKMjjn4sIxomGdXAWUZUTDJqpcFoo2KCUQ2cZUTHJKMauMuboiloz5o1cJd3Rd0QjlYGzjpivqQjBu7GI07y+0TPwN181ISyMHAXIFEzAakGzkKiZhJSDZyJRM1EpBo4G4mayUg1cEYSNTuHpKyBM5KomZD0fUakjZKZSF+7bHRMRGrZCmmjYhJShw2QthERWTptfLTybYx8xL6JR3waIx4xb9IRX8ZIR6ybcMSHMcIR4yYb8V2MbMS2iUZ8FiMa1bSZRv0QWWrZTCOu8Pv3UFMmo/XwCp/fWrJrptEwEFmYtQuNhonIUrNmGg0LkaVmzTQaNiJLzZppNBxElpo102i4iCw1a6bR8BBZatZMo9FDZKlZM42olWjErF1oRLFEI2btQiOqJRq10mS00S3JqGbNNKJdolHN2uXNUTciS83a5dVRDyLL0ax9Ljzqh8hSs3bxURORpWbNQKJlAlLNmoVEzSQkZu1CJGomIjFrFyNRMxmJWbsgiZoJSTVrVhI1k5Jq1qwkaiYlfZ8ZaaNkNtLXLhsdk5GYNROJiolIzJqFRMMkJGbNQKJgAlKXtY82CiYfdVvxaKNf4lGPpY426iUdMW3GEe0Sjti2i436IbLUuF1s1ERkqXWzjSiXbMS8mUZ0SzQ63LePbUS3ZKMaONuIbslGDNzFRnRLNmLgLjaiW6dslAzcxUZ0SzaqgbONaJdsVANnG1Ev2agGzjaiX6feG2UNnG1EwWSjGjjbiIbJRjVwthEVk40YONOIiunVER/Ufr0+BQkaJhgxbxcaUbHTR03m7WajfoiszJvfHNEx4ajmzTqiY9JRzZt5RMnEo5o3+4iSyUc1bwYSJTv99Jk1bxYSJZOQat5MJEomIjFvFyNRMhmJebsYiZLJSP0svpbb+iGEtH7tstEwCYl5M5AomIDEvNlH9Es+Yt7MI+olHjFvpz6ZW6jXmYMm83bym7mFfglHzJttRL1ko14LGu3c4vehqc9CRjsfI/8WlHk7+nBuayFktNS8nft0bu1AyGhh3s5+O7fQLcGo5u3yuqgLkaXmzTKiW2ef4rPm7dT3cwvdkoxq3iwjuiUZ1bxZRnRLMmLeLjJivCQj5u0ioxERWZi3w6/oVvolGdW8nfuMbqFgklHNm2VEwySjo2e3j2VExSQj5s0womLnzpqjsnpvtPYgstS8+b0R4yUY1byd+JJu5SC/T/WjtaHRxniJRszbxUbNwAtiT7k=';
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

describe('compress / decompress', () => {
  it('writes zstd (codec 1) by default and reads it back', async () => {
    const data = sqlText(MiB);
    const stored = await compress(data);
    assert.equal(stored.codec, CODEC_ZSTD);
    assert.equal(stored.data.readUInt32BE(0), 0x28b52ffd, 'a zstd frame (magic 28 b5 2f fd)');
    assert.ok((await decompress(stored.codec, stored.data, data.length)).equals(data));
  });

  it('writes the frames of zstdCompressSync byte for byte, chunk after chunk, at each level (stored bytes unchanged)', () => {
    const frameOf = (data: Uint8Array, level: number) =>
      zstdCompressSync(data, {
        chunkSize: Math.min(data.length + (data.length >> 8) + 64, 4 * MiB), // as compression.ts always did
        params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
      });
    const text = sqlText(5 * MiB);
    const inputs = [
      Buffer.from('tidemark '.repeat(12)),
      text.subarray(0, 3000),
      text, // beyond any earlier output buffer
      text.subarray(7, 200 * 1024),
      Buffer.concat([text.subarray(0, MiB), randomData(MiB).subarray(0, 40_000)]),
      Buffer.from('tidemark '.repeat(40)),
      // 9 MiB, text where the probe looks, a frame over 4 MiB (written in several steps)
      Buffer.concat([text.subarray(0, MiB), randomData(2 * MiB), text.subarray(0, 2 * MiB), randomData(3 * MiB), text]),
    ];
    for (const level of [1, 3, 1])
      for (const data of inputs) {
        const { codec, parts } = compressParts(data, CODEC_ZSTD, { level });
        assert.equal(codec, CODEC_ZSTD);
        const expected = frameOf(data, level);
        assert.ok(Buffer.from(parts[0] as Uint8Array).equals(expected), `${data.length} bytes at level ${level}`);
        assert.equal(Buffer.from(parts[1] as Uint8Array).readUInt32LE(0), crc32(expected));
      }
  });

  it('stores an incompressible chunk as is (codec 0) by default, large ones settled by the probe', async () => {
    for (const data of [randomData(4 * MiB), randomData(64 * 1024)]) {
      const stored = await compress(data);
      assert.equal(stored.codec, CODEC_NONE);
      assert.equal(stored.data, data);
    }
  });

  it('no longer writes brotli (codec 2): naming it is Unsupported', async () => {
    await assert.rejects(compress(sqlText(MiB), CODEC_BROTLI), (e) => isCode(e, 'Unsupported'));
  });

  {
    const codec = CODEC_ZSTD;
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

  it('reads brotli (codec 2) as written on Node 20, and rejects damaged brotli', async () => {
    const text = fixtureText();
    const stored = Buffer.from(BROTLI_FIXTURE, 'base64');
    assert.ok((await decompress(CODEC_BROTLI, stored, text.length)).equals(text));
    assert.ok((await decompress(CODEC_BROTLI, stored)).equals(text));
    const bad = Buffer.from(stored);
    bad[100] = (bad[100] as number) ^ 0x10;
    await assert.rejects(decompress(CODEC_BROTLI, bad, text.length), (e) => isCode(e, 'Corrupt'));
    await assert.rejects(decompress(CODEC_BROTLI, stored, text.length - 1), (e) => isCode(e, 'Corrupt'));
    // A brotli stream cut short before its CRC was taken, and garbage with a valid CRC.
    const stream = brotliCompressSync(sqlText(MiB), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
    assert.ok((await decompress(CODEC_BROTLI, framed(stream), MiB)).equals(sqlText(MiB)));
    await assert.rejects(decompress(CODEC_BROTLI, framed(stream.subarray(0, stream.length / 2)), MiB), (e) =>
      isCode(e, 'Corrupt'),
    );
    await assert.rejects(decompress(CODEC_BROTLI, framed(randomData(1000, 'garbage'))), (e) => isCode(e, 'Corrupt'));
  });

  it('reads zstd written by Node 22', async () => {
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

  it('rejects small zstd frames (decoded on the calling thread) that end early, run long or carry trailing bytes, and decodes the next chunk right after each', async () => {
    const good = sqlText(4096);
    const goodFrame = zstdCompressSync(good);
    const other = sqlText(3000).reverse();
    const otherFrame = zstdCompressSync(other);
    const bad: [string, Buffer, number][] = [
      ['trailing garbage', Buffer.concat([goodFrame, Buffer.from('garbage!')]), good.length],
      [
        'three trailing bytes (too few to be a frame header)',
        Buffer.concat([goodFrame, Buffer.from('xyz')]),
        good.length,
      ],
      ['a second frame', Buffer.concat([goodFrame, otherFrame]), good.length],
      ['content longer than expected', goodFrame, good.length - 1],
      ['content shorter than expected', goodFrame, good.length + 1],
      ['not a frame', Buffer.from('not a zstd frame at all'), good.length],
    ];
    for (let cut = 1; cut < goodFrame.length; cut += Math.max(1, Math.floor(goodFrame.length / 50)))
      bad.push([`truncated to ${cut} bytes`, goodFrame.subarray(0, cut), good.length]);
    bad.push(['truncated by one byte', goodFrame.subarray(0, goodFrame.length - 1), good.length]);
    for (const [what, stream, expected] of bad) {
      await assert.rejects(decompress(CODEC_ZSTD, framed(stream), expected), (e) => isCode(e, 'Corrupt'), what);
      assert.ok((await decompress(CODEC_ZSTD, framed(otherFrame), other.length)).equals(other), `after ${what}`);
    }
  });

  it('gives each small chunk its own buffer (one decoded later does not change one decoded earlier)', async () => {
    const chunks = [sqlText(4096), sqlText(1000).reverse(), sqlText(64 * 1024), Buffer.alloc(5000, 7)];
    const stored = await Promise.all(chunks.map((c) => compress(c)));
    const back: Buffer[] = [];
    for (const [i, s] of stored.entries()) back.push(await decompress(s.codec, s.data, chunks[i]?.length));
    for (const [i, b] of back.entries()) assert.ok(b.equals(chunks[i] as Buffer), `chunk ${i}`);
  });

  it('compresses several chunks in parallel', async () => {
    const chunks = [0, 1, 2, 3].map((i) => sqlText(MiB + i));
    const stored = await Promise.all(chunks.map((c) => compress(c)));
    const back = await Promise.all(stored.map((s, i) => decompress(s.codec, s.data, chunks[i]?.length)));
    for (const [i, b] of back.entries()) assert.ok(b.equals(chunks[i] as Buffer));
  });
});

describe('crc32', () => {
  it('is the IEEE CRC-32', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });
});
