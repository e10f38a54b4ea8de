import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCode } from '../errors.ts';
import { generateMasterKeys, unwrapMasterKeys, wrapMasterKeys } from './keys.ts';
import { TEST_SCRYPT } from './testing/repository.ts';

test('master keys wrapped with a passphrase unwrap with it', async () => {
  const keys = generateMasterKeys();
  const file = await wrapMasterKeys(keys, Buffer.from('passphrase'), TEST_SCRYPT);
  assert.equal(file.kdf, 'scrypt');
  assert.ok(
    !file.data.includes(keys.encryption.toString('base64')),
    'the key file does not hold the keys in the clear',
  );
  assert.deepEqual(await unwrapMasterKeys(file, Buffer.from('passphrase')), keys);
});

test('a wrong passphrase is WrongKey with a clear message', async () => {
  const file = await wrapMasterKeys(generateMasterKeys(), Buffer.from('right'), TEST_SCRYPT);
  await assert.rejects(unwrapMasterKeys(file, Buffer.from('wrong')), (e: Error) => {
    assert.ok(isCode(e, 'WrongKey'));
    assert.match(e.message, /wrong repository key/);
    return true;
  });
});

test('an unknown key file version is refused', async () => {
  const file = await wrapMasterKeys(generateMasterKeys(), Buffer.from('p'), TEST_SCRYPT);
  await assert.rejects(unwrapMasterKeys({ ...file, version: 2 as 1 }, Buffer.from('p')), (e) =>
    isCode(e, 'Unsupported'),
  );
});
