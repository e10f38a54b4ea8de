import { randomBytes } from 'node:crypto';
import { TidemarkError } from '../errors.ts';
import { DEFAULT_SCRYPT, deriveKey, open, type ScryptParams, seal } from './crypto.ts';

/**
 * The repository's secrets, generated once at `init` and never stored in the clear: they are
 * wrapped by a key derived from the user's passphrase and kept in `keys/<id>` (several passphrases
 * can wrap the same master keys).
 */
export interface MasterKeys {
  /** AES-256-GCM key for every encrypted blob and chunk. */
  encryption: Buffer;
  /** HMAC-SHA256 key for chunk ids, so stored names reveal nothing about content. */
  chunkId: Buffer;
  /** Seed of the chunker's gear table, so chunk boundaries differ per repository. */
  chunkerSeed: Buffer;
}

/** `keys/<id>`: plain JSON, since it must be readable before anything can be decrypted. */
export interface KeyFile {
  version: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  /** base64 of seal(kek, JSON of the master keys, aad "tidemark key") */
  data: string;
  created: string;
}

const KEY_AAD = Buffer.from('tidemark key');

export function generateMasterKeys(): MasterKeys {
  return { encryption: randomBytes(32), chunkId: randomBytes(32), chunkerSeed: randomBytes(32) };
}

/**
 * Keys of a replica sharing `primary`'s chunk identity (id key and chunker seed), so a copy there needs
 * no re-identification; its encryption key is its own, so neither repository's key opens the other.
 */
export function replicaMasterKeys(primary: MasterKeys, encryption: Buffer = randomBytes(32)): MasterKeys {
  return { encryption, chunkId: primary.chunkId, chunkerSeed: primary.chunkerSeed };
}

export async function wrapMasterKeys(
  keys: MasterKeys,
  passphrase: Buffer,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<KeyFile> {
  const salt = randomBytes(32);
  const kek = await deriveKey(passphrase, salt, params);
  const plain = Buffer.from(
    JSON.stringify({
      encryption: keys.encryption.toString('base64'),
      chunkId: keys.chunkId.toString('base64'),
      chunkerSeed: keys.chunkerSeed.toString('base64'),
    }),
  );
  return {
    version: 1,
    kdf: 'scrypt',
    ...params,
    salt: salt.toString('base64'),
    data: seal(kek, plain, KEY_AAD).toString('base64'),
    created: new Date().toISOString(),
  };
}

/** Unwraps with a passphrase; a wrong passphrase fails with code WrongKey. */
export async function unwrapMasterKeys(file: KeyFile, passphrase: Buffer): Promise<MasterKeys> {
  if (file.version !== 1 || file.kdf !== 'scrypt')
    throw new TidemarkError('Unsupported', `key file version ${file.version} (${file.kdf}) is not supported`);
  const kek = await deriveKey(passphrase, Buffer.from(file.salt, 'base64'), { N: file.N, r: file.r, p: file.p });
  let plain: Buffer;
  try {
    plain = open(kek, Buffer.from(file.data, 'base64'), KEY_AAD, 'key file');
  } catch {
    throw new TidemarkError(
      'WrongKey',
      'wrong repository key: the passphrase does not open any key of this repository',
    );
  }
  const parsed = JSON.parse(plain.toString('utf8')) as Record<keyof MasterKeys, string>;
  return {
    encryption: Buffer.from(parsed.encryption, 'base64'),
    chunkId: Buffer.from(parsed.chunkId, 'base64'),
    chunkerSeed: Buffer.from(parsed.chunkerSeed, 'base64'),
  };
}
