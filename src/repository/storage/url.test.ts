import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TidemarkError } from '../../errors.ts';
import { openStorage, parseStorageUrl, redactUrl } from './url.ts';

const aws = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'aws-secret-value' };
const azureKey = { AZURE_STORAGE_ACCOUNT: 'acct', AZURE_STORAGE_KEY: 'YXp1cmUtc2VjcmV0LXZhbHVl' };
const azureConnection = {
  AZURE_STORAGE_CONNECTION_STRING:
    'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=YXp1cmUtc2VjcmV0LXZhbHVl;BlobEndpoint=http://127.0.0.1:10000/acct;',
};

describe('parseStorageUrl', () => {
  test('file:///abs/path', () => {
    assert.deepEqual(parseStorageUrl('file:///var/backups/repo/', {}), { kind: 'file', rootDir: '/var/backups/repo' });
    assert.deepEqual(parseStorageUrl('file:///data%20x', {}), { kind: 'file', rootDir: '/data x' });
  });

  test('s3 with endpoint, region and path style; credentials from the environment', () => {
    assert.deepEqual(
      parseStorageUrl('s3://my-bucket/tenants/a/?endpoint=http://127.0.0.1:9000/&region=eu-west-1&pathStyle=true', aws),
      {
        kind: 's3',
        options: {
          bucket: 'my-bucket',
          prefix: 'tenants/a',
          endpoint: 'http://127.0.0.1:9000',
          region: 'eu-west-1',
          forcePathStyle: true,
          credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'aws-secret-value', sessionToken: undefined },
        },
      },
    );
  });

  test('s3 defaults: region from AWS_REGION, else us-east-1; no credentials leaves them to the SDK chain', () => {
    assert.deepEqual(parseStorageUrl('s3://bucket', { AWS_REGION: 'ca-central-1' }), {
      kind: 's3',
      options: {
        bucket: 'bucket',
        prefix: '',
        endpoint: undefined,
        region: 'ca-central-1',
        forcePathStyle: false,
        credentials: undefined,
      },
    });
    const config = parseStorageUrl('s3://bucket/p', { ...aws, AWS_SESSION_TOKEN: 'tok' });
    assert.equal(config.kind === 's3' && config.options.region, 'us-east-1');
    assert.equal(config.kind === 's3' && config.options.credentials?.sessionToken, 'tok');
  });

  test('azblob with account and key; endpoint from the URL or Azure public cloud', () => {
    assert.deepEqual(parseStorageUrl('azblob://backups/r1?endpoint=http://127.0.0.1:10000/acct', azureKey), {
      kind: 'azblob',
      options: {
        container: 'backups',
        prefix: 'r1',
        endpoint: 'http://127.0.0.1:10000/acct',
        accountName: 'acct',
        accountKey: azureKey.AZURE_STORAGE_KEY,
      },
    });
    const config = parseStorageUrl('azblob://backups', azureKey);
    assert.equal(
      config.kind === 'azblob' && 'endpoint' in config.options && config.options.endpoint,
      'https://acct.blob.core.windows.net',
    );
  });

  test('azblob with a connection string', () => {
    assert.deepEqual(parseStorageUrl('azblob://backups/r1', { ...azureKey, ...azureConnection }), {
      kind: 'azblob',
      options: {
        container: 'backups',
        prefix: 'r1',
        ...{ connectionString: azureConnection.AZURE_STORAGE_CONNECTION_STRING },
      },
    });
  });

  const invalid: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['not a url', {}, /: URL: cannot be parsed/],
    ['ftp://host/x', {}, /: scheme: "ftp:"/],
    ['file://server/share', {}, /: host: file URLs take no host/],
    ['file:///x?fsync=true', {}, /: parameter fsync: unknown \(allowed: none\)/],
    ['file:///x#frag', {}, /: fragment:/],
    ['s3://Bad_Bucket/p', aws, /: bucket: "Bad_Bucket"/],
    ['s3://bucket:9000/p', aws, /: bucket: "bucket:9000"/],
    ['s3:///p', aws, /: bucket: ""/],
    ['s3://bucket/a%20b', aws, /: prefix: "a b" must be folders/],
    ['s3://bucket/a//b', aws, /: prefix: "a\/\/b"/],
    ['s3://bucket/a%2', aws, /: prefix: bad percent-encoding/],
    ['s3://bucket/p?endpoint=127.0.0.1:9000', aws, /: parameter endpoint: must be an http/],
    ['s3://bucket/p?endpoint=ftp://host', aws, /: parameter endpoint: must be an http/],
    ['s3://bucket/p?region=EU%20West', aws, /: parameter region:/],
    ['s3://bucket/p?pathStyle=yes', aws, /: parameter pathStyle: must be true or false/],
    ['s3://bucket/p?region=a&region=b', aws, /: parameter region: given twice/],
    ['s3://bucket/p?acl=public', aws, /: parameter acl: unknown \(allowed: endpoint, region, pathStyle\)/],
    ['s3://bucket/p', { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE' }, /: credentials: set both/],
    ['azblob://Backups/p', azureKey, /: container: "Backups"/],
    ['azblob://back--ups/p', azureKey, /: container:/],
    ['azblob://backups/p', {}, /: credentials: set AZURE_STORAGE_CONNECTION_STRING/],
    [
      'azblob://backups/p?endpoint=http://127.0.0.1:1',
      azureConnection,
      /: parameter endpoint: AZURE_STORAGE_CONNECTION/,
    ],
  ];
  for (const [url, env, message] of invalid)
    test(`refuses ${url}`, () => {
      assert.throws(
        () => parseStorageUrl(url, env),
        (error: unknown) => {
          assert.ok(error instanceof TidemarkError);
          assert.equal(error.code, 'InvalidArgument');
          assert.match(error.message, message);
          return true;
        },
      );
    });
});

describe('credentials stay out of descriptions and messages', () => {
  test('credentials in the URL are refused without being repeated', () => {
    for (const url of ['s3://AKID:topsecret@bucket/p', 's3://bucket/p?endpoint=http://u:topsecret@127.0.0.1:9000'])
      assert.throws(
        () => openStorage(url, aws),
        (error: Error) =>
          !error.message.includes('topsecret') && /credentials do not belong in the URL/.test(error.message),
      );
  });

  test('descriptions name the place, never the keys', () => {
    const s3 = openStorage('s3://bucket/p?endpoint=http://127.0.0.1:9000&pathStyle=true', aws);
    assert.equal(s3.description, 's3://bucket/p?endpoint=http://127.0.0.1:9000');
    const byKey = openStorage('azblob://backups/r1?endpoint=http://127.0.0.1:10000/acct', azureKey);
    assert.equal(byKey.description, 'azblob://backups/r1?endpoint=http://127.0.0.1:10000/acct');
    const sas = 'https://acct.blob.core.windows.net/?sv=2024-01-01&sig=c2lnbmF0dXJl';
    const byConnection = openStorage('azblob://backups/r1', {
      AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${sas.split('?')[0]};SharedAccessSignature=${sas.split('?')[1]}`,
    });
    assert.equal(byConnection.description, 'azblob://backups/r1?endpoint=https://acct.blob.core.windows.net');
    assert.equal(openStorage('file:///var/repo', {}).description, 'file:///var/repo');
  });
});

describe('redactUrl', () => {
  test('replaces user info and secret-looking parameters, also inside a nested endpoint URL', () => {
    assert.equal(redactUrl('s3://AKID:topsecret@bucket/p'), 's3://redacted:redacted@bucket/p');
    assert.equal(
      redactUrl('https://acct.blob.core.windows.net/c?sv=2024&sig=abc%2Bdef&se=2026'),
      'https://acct.blob.core.windows.net/c?sv=2024&sig=redacted&se=2026',
    );
    const nested = redactUrl('s3://bucket/p?endpoint=http://u:topsecret@host:9000&region=x');
    assert.ok(!nested.includes('topsecret'), nested);
    assert.ok(nested.includes('region=x'), nested);
    assert.equal(redactUrl('s3://bucket/p?X-Amz-Credential=AKID&X-Amz-Security-Token=t').includes('AKID'), false);
  });

  test('leaves clean URLs exactly as written, and hides what cannot be parsed', () => {
    const clean = 's3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1&pathStyle=true';
    assert.equal(redactUrl(clean), clean);
    assert.equal(redactUrl('//AKID:topsecret@bucket'), '(not a URL)');
  });
});
