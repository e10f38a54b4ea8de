import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TidemarkError, withContext } from '../errors.ts';
import { parseStorageUrl, type StorageConfig } from '../repository/storage/url.ts';

const require = createRequire(import.meta.url);
const MiB = 1024 * 1024;
/** S3 presigned URLs (signature version 4) are valid for at most 7 days. */
export const S3_MAX_LINK_SECONDS = 7 * 24 * 3600;

/**
 * Where exports are written: the repository's own bucket, container or directory, under `exports/`,
 * which is no part of the repository format (docs/repository-format.md), so check, prune and repair
 * never look at it. Objects are streamed (S3 multipart, Azure staged blocks, a temporary file renamed),
 * never held whole in memory.
 */
export interface ExportStore {
  /** The repository's location, without credentials, for messages. */
  readonly description: string;
  /** Writes `key` from `data`; returns its size. */
  upload(key: string, data: Readable): Promise<number>;
  /** A link that reads `key` without other credentials until `expires`; undefined for filesystem repositories. */
  link(key: string, expires: Date, fileName: string): Promise<string | undefined>;
  /** Where `key` is for someone who reads the repository's storage directly (a path for filesystem repositories). */
  location(key: string): string;
  /** Deletes `key`; a missing one is fine. */
  delete(key: string): Promise<void>;
}

export function openExportStore(repositoryUrl: string, env: NodeJS.ProcessEnv): ExportStore {
  const config = parseStorageUrl(repositoryUrl, env);
  switch (config.kind) {
    case 'file':
      return fileStore(config.rootDir);
    case 's3':
      return s3Store(config.options);
    case 'azblob':
      return azureStore(config.options);
  }
}

/** Counts what passes through, so a streamed upload knows its size. */
function counting(data: Readable): { stream: PassThrough; bytes: () => number } {
  let bytes = 0;
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  data.on('error', (error) => stream.destroy(error));
  data.pipe(stream);
  return { stream, bytes: () => bytes };
}

function fileStore(rootDir: string): ExportStore {
  const path = (key: string) => join(rootDir, key);
  return {
    description: `file://${rootDir}`,
    async upload(key, data) {
      const target = path(key);
      const temp = `${target}.tmp-${process.pid}`;
      try {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(data, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true }).catch(() => {}); // nothing to remove when the folder could not be made
        throw withContext(`writing export ${target}`, error);
      }
      return (await stat(target)).size;
    },
    async link() {
      return undefined;
    },
    location: path,
    async delete(key) {
      await rm(path(key), { force: true });
    },
  };
}

function s3Store(options: Extract<StorageConfig, { kind: 's3' }>['options']): ExportStore {
  const sdk = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const prefix = options.prefix.replace(/^\/+|\/+$/g, '');
  const objectKey = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const description = `s3://${options.bucket}/${prefix}`;
  const failed = (operation: string, key: string, error: unknown) =>
    withContext(`${description}: ${operation} ${key}`, error);
  return {
    description,
    async upload(key, data) {
      const { Upload } = require('@aws-sdk/lib-storage') as typeof import('@aws-sdk/lib-storage');
      const body = counting(data);
      try {
        await new Upload({
          client,
          params: { Bucket: options.bucket, Key: objectKey(key), Body: body.stream, ContentType: 'application/zip' },
          partSize: 8 * MiB,
          queueSize: 2,
        }).done();
      } catch (error) {
        throw failed('upload', key, error);
      }
      return body.bytes();
    },
    async link(key, expires, fileName) {
      const seconds = Math.ceil((expires.getTime() - Date.now()) / 1000);
      if (seconds > S3_MAX_LINK_SECONDS)
        throw new TidemarkError('InvalidArgument', `an S3 link lasts at most 7 days, not ${seconds} s`);
      const { getSignedUrl } =
        require('@aws-sdk/s3-request-presigner') as typeof import('@aws-sdk/s3-request-presigner');
      const command = new sdk.GetObjectCommand({
        Bucket: options.bucket,
        Key: objectKey(key),
        ResponseContentDisposition: contentDisposition(fileName),
      });
      return getSignedUrl(client, command, { expiresIn: Math.max(1, seconds) });
    },
    location: (key) => `s3://${options.bucket}/${objectKey(key)}`,
    async delete(key) {
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: options.bucket, Key: objectKey(key) }));
      } catch (error) {
        throw failed('delete', key, error);
      }
    },
  };
}

function azureStore(options: Extract<StorageConfig, { kind: 'azblob' }>['options']): ExportStore {
  const azure = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
  const service =
    'connectionString' in options
      ? azure.BlobServiceClient.fromConnectionString(options.connectionString)
      : new azure.BlobServiceClient(
          options.endpoint,
          new azure.StorageSharedKeyCredential(options.accountName, options.accountKey),
        );
  const container = service.getContainerClient(options.container);
  const prefix = options.prefix.replace(/^\/+|\/+$/g, '');
  const blobName = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const description = `azblob://${options.container}/${prefix}`;
  const failed = (operation: string, key: string, error: unknown) =>
    withContext(`${description}: ${operation} ${key}`, error);
  return {
    description,
    async upload(key, data) {
      const body = counting(data);
      try {
        await container
          .getBlockBlobClient(blobName(key))
          .uploadStream(body.stream, 8 * MiB, 2, { blobHTTPHeaders: { blobContentType: 'application/zip' } });
      } catch (error) {
        throw failed('upload', key, error);
      }
      return body.bytes();
    },
    async link(key, expires, fileName) {
      const blob = container.getBlobClient(blobName(key));
      if (!(blob.credential instanceof azure.StorageSharedKeyCredential))
        throw new TidemarkError(
          'Unsupported',
          `${description}: a SAS link needs the account key (AZURE_STORAGE_KEY, or AccountKey in the connection string)`,
        );
      return blob.generateSasUrl({
        permissions: azure.BlobSASPermissions.parse('r'),
        expiresOn: expires,
        contentDisposition: contentDisposition(fileName),
      });
    },
    location: (key) => `azblob://${options.container}/${blobName(key)}`,
    async delete(key) {
      try {
        await container.getBlobClient(blobName(key)).deleteIfExists();
      } catch (error) {
        throw failed('delete', key, error);
      }
    },
  };
}

function contentDisposition(fileName: string): string {
  return `attachment; filename="${fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`;
}
