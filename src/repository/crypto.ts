import { createCipheriv, createDecipheriv, createHmac, randomFillSync, scrypt as scryptCallback } from 'node:crypto';
import { TidemarkError } from '../errors.ts';

/** AES-256-GCM envelope: nonce (12 bytes) || ciphertext || tag (16 bytes). */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const ENVELOPE_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Encrypts with a random nonce. `aad` binds the ciphertext to where it belongs (a chunk id, a blob
 * name), so a blob cannot be swapped for another valid one.
 */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const envelope = Buffer.allocUnsafe(plaintext.length + ENVELOPE_OVERHEAD);
  sealInto(key, [plaintext], aad, envelope);
  return envelope;
}

/**
 * `seal` of the concatenation of `parts`, written into `out` (at least their length + ENVELOPE_OVERHEAD
 * bytes) instead of a new buffer; returns the envelope's length. The pipeline seals into reused buffers.
 */
export function sealInto(key: Uint8Array, parts: readonly Uint8Array[], aad: Uint8Array, out: Uint8Array): number {
  const nonce = out.subarray(0, NONCE_BYTES);
  randomFillSync(nonce);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  let at = NONCE_BYTES;
  for (const part of parts) {
    const body = cipher.update(part);
    out.set(body, at);
    at += body.length;
  }
  const final = cipher.final();
  out.set(final, at);
  at += final.length;
  out.set(cipher.getAuthTag(), at);
  return at + TAG_BYTES;
}

/** Decrypts and authenticates; any change to the bytes, the key or the aad fails with code Corrupt. */
export function open(key: Buffer, envelope: Buffer, aad: Buffer, what: string): Buffer {
  if (envelope.length < ENVELOPE_OVERHEAD)
    throw new TidemarkError('Corrupt', `${what}: ${envelope.length} bytes is shorter than an encrypted envelope`);
  const decipher = createDecipheriv('aes-256-gcm', key, envelope.subarray(0, NONCE_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(envelope.subarray(envelope.length - TAG_BYTES));
  try {
    const plaintext = decipher.update(envelope.subarray(NONCE_BYTES, envelope.length - TAG_BYTES));
    // GCM gives every byte from update: final only checks the tag (no second copy of a chunk to join them).
    const rest = decipher.final();
    return rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest]);
  } catch (error) {
    throw new TidemarkError('Corrupt', `${what}: authentication failed (data damaged or not written with this key)`, {
      cause: error,
    });
  }
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Interactive-strength defaults (N=2^15, r=8, p=1): ~50 ms and 32 MiB here, per opening of a repository. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

export function deriveKey(passphrase: Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, 32, { ...params, maxmem: 256 * params.N * params.r }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}
