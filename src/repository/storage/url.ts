import { fileURLToPath } from 'node:url';
import { parseDuration } from '../../api/duration.ts';
import { TidemarkError } from '../../errors.ts';
import { log } from '../../log.ts';
import { AzureBlobStorage, type AzureBlobStorageOptions } from './azblob.ts';
import { FileStorage } from './file.ts';
import { DEFAULT_RETRY_BUDGET_MS, type RetryEvent, retrying } from './retrying.ts';
import { S3Storage, type S3StorageOptions } from './s3.ts';
import type { Storage } from './storage.ts';

const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const containerName = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;
const prefixPart = /^[A-Za-z0-9_.-]+$/;
const regionName = /^[a-z0-9-]+$/;
const secretParameter = /key|secret|token|sig|password|credential/i;

export type StorageConfig =
  | { kind: 'file'; rootDir: string }
  | { kind: 's3'; options: S3StorageOptions }
  | { kind: 'azblob'; options: AzureBlobStorageOptions };

/**
 * Opens the storage a repository URL names, wrapped in retrying():
 *
 * - `file:///abs/path`
 * - `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&pathStyle=true`; credentials from
 *   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in `env`, or else the AWS SDK's default
 *   chain (web identity, instance profile); region from the URL, else AWS_REGION, else us-east-1.
 * - `azblob://container/prefix?endpoint=https://account.blob.core.windows.net`; credentials from
 *   AZURE_STORAGE_CONNECTION_STRING (which names the endpoint itself), or AZURE_STORAGE_ACCOUNT and
 *   AZURE_STORAGE_KEY (endpoint from the URL, else Azure's public one for that account).
 *
 * Credentials never come from the URL, so descriptions and messages never hold them. Each operation retries
 * for TIDEMARK_RETRY_BUDGET in `env` (a duration: `2m`, `90s`; `0s` for no retries; default 2m), each retry
 * logged as a warning.
 */
export function openStorage(url: string, env: NodeJS.ProcessEnv = process.env): Storage {
  const config = parseStorageUrl(url, env);
  const retry = { budgetMs: retryBudgetMs(env), onRetry: logRetry };
  switch (config.kind) {
    case 'file':
      return retrying(new FileStorage(config.rootDir), retry);
    case 's3':
      return retrying(new S3Storage(config.options), retry);
    case 'azblob':
      return retrying(new AzureBlobStorage(config.options), retry);
  }
}

/** TIDEMARK_RETRY_BUDGET as milliseconds, the default when unset. */
function retryBudgetMs(env: NodeJS.ProcessEnv): number {
  const text = env.TIDEMARK_RETRY_BUDGET;
  if (text === undefined || text === '') return DEFAULT_RETRY_BUDGET_MS;
  try {
    return parseDuration(text, { allowZero: true });
  } catch (error) {
    throw new TidemarkError(
      'InvalidArgument',
      `retry budget (--retry-budget, TIDEMARK_RETRY_BUDGET): ${(error as Error).message}`,
    );
  }
}

function logRetry(event: RetryEvent): void {
  log.warn(
    {
      event: 'storage-retry',
      operation: event.operation,
      blob: event.name,
      attempt: event.attempt,
      code: event.error.code,
    },
    `${event.error.message}; retrying in ${event.delayMs} ms`,
  );
}

/** The URL for logs: user info and query parameters that look secret (keys, signatures, tokens) are replaced. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(not a URL)';
  }
  let changed = false;
  if (parsed.username || parsed.password) {
    parsed.username = parsed.password = 'redacted';
    changed = true;
  }
  for (const [key, value] of [...parsed.searchParams]) {
    const redacted = secretParameter.test(key) ? 'redacted' : URL.canParse(value) ? redactUrl(value) : value;
    if (redacted !== value) {
      parsed.searchParams.set(key, redacted);
      changed = true;
    }
  }
  return changed ? parsed.href : url;
}

/** What openStorage would open, without opening it; throws InvalidArgument naming the part of the URL at fault. */
export function parseStorageUrl(url: string, env: NodeJS.ProcessEnv = process.env): StorageConfig {
  const reader = urlReader(url);
  switch (reader.parsed.protocol) {
    case 'file:':
      return parseFile(reader);
    case 's3:':
      return parseS3(reader, env);
    case 'azblob:':
      return parseAzureBlob(reader, env);
    default:
      throw reader.invalid('scheme', `"${reader.parsed.protocol}" is not one of file:, s3:, azblob:`);
  }
}

type UrlReader = ReturnType<typeof urlReader>;

/** The parsed URL with checked accessors for its parts; each failure names the part. */
function urlReader(url: string) {
  const invalid = (part: string, problem: string) =>
    new TidemarkError('InvalidArgument', `storage URL ${redactUrl(url)}: ${part}: ${problem}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('URL', 'cannot be parsed (expected file:///path, s3://bucket/prefix or azblob://container/prefix)');
  }
  if (parsed.username || parsed.password)
    throw invalid('user info', 'credentials do not belong in the URL; set them in the environment');
  if (parsed.hash) throw invalid('fragment', `unexpected ${parsed.hash}`);

  return {
    parsed,
    invalid,
    parameters(allowed: string[]): Record<string, string> {
      const result: Record<string, string> = {};
      for (const [key, value] of parsed.searchParams) {
        if (!allowed.includes(key))
          throw invalid(`parameter ${key}`, `unknown (allowed: ${allowed.join(', ') || 'none'})`);
        if (key in result) throw invalid(`parameter ${key}`, 'given twice');
        result[key] = value;
      }
      return result;
    },
    prefix(): string {
      let path: string;
      try {
        path = decodeURIComponent(parsed.pathname);
      } catch {
        throw invalid('prefix', 'bad percent-encoding');
      }
      const trimmed = path.replace(/^\/+|\/+$/g, '');
      if (trimmed && !trimmed.split('/').every((part) => prefixPart.test(part) && part !== '.' && part !== '..'))
        throw invalid('prefix', `"${trimmed}" must be folders of letters, digits, _ . and -`);
      return trimmed;
    },
    endpoint(value: string | undefined): string | undefined {
      if (value === undefined) return undefined;
      const endpoint = URL.canParse(value) ? new URL(value) : undefined;
      if (!endpoint || !['http:', 'https:'].includes(endpoint.protocol))
        throw invalid('parameter endpoint', 'must be an http:// or https:// URL');
      if (endpoint.username || endpoint.password)
        throw invalid('parameter endpoint', 'credentials do not belong in the URL; set them in the environment');
      return value.replace(/\/+$/, '');
    },
  };
}

function parseFile({ parsed, invalid, parameters }: UrlReader): StorageConfig {
  if (parsed.host && parsed.host !== 'localhost')
    throw invalid('host', `file URLs take no host (file:///abs/path), got ${parsed.host}`);
  parameters([]);
  return { kind: 'file', rootDir: fileURLToPath(parsed).replace(/(.)\/+$/, '$1') };
}

function parseS3(url: UrlReader, env: NodeJS.ProcessEnv): StorageConfig {
  const { host } = url.parsed;
  if (!bucketName.test(host)) throw url.invalid('bucket', `"${host}" is not an S3 bucket name`);
  const { endpoint, region, pathStyle } = url.parameters(['endpoint', 'region', 'pathStyle']);
  if (region !== undefined && !regionName.test(region))
    throw url.invalid('parameter region', `"${region}" is not a region`);
  if (pathStyle !== undefined && pathStyle !== 'true' && pathStyle !== 'false')
    throw url.invalid('parameter pathStyle', 'must be true or false');
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey))
    throw url.invalid('credentials', 'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither');
  const options: S3StorageOptions = {
    bucket: host,
    prefix: url.prefix(),
    endpoint: url.endpoint(endpoint),
    region: region ?? env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: pathStyle === 'true',
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined }
        : undefined,
  };
  return { kind: 's3', options };
}

function parseAzureBlob(url: UrlReader, env: NodeJS.ProcessEnv): StorageConfig {
  const { host } = url.parsed;
  if (!containerName.test(host)) throw url.invalid('container', `"${host}" is not an Azure container name`);
  const endpoint = url.endpoint(url.parameters(['endpoint']).endpoint);
  const where = { container: host, prefix: url.prefix() };
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString) {
    if (endpoint)
      throw url.invalid('parameter endpoint', 'AZURE_STORAGE_CONNECTION_STRING names the endpoint already; drop one');
    return { kind: 'azblob', options: { ...where, connectionString } };
  }
  const { AZURE_STORAGE_ACCOUNT: accountName, AZURE_STORAGE_KEY: accountKey } = env;
  if (!accountName || !accountKey)
    throw url.invalid(
      'credentials',
      'set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY',
    );
  return {
    kind: 'azblob',
    options: {
      ...where,
      endpoint: endpoint ?? `https://${accountName}.blob.core.windows.net`,
      accountName,
      accountKey,
    },
  };
}
