import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { BucketLocationConstraint, S3Client } from '@aws-sdk/client-s3';
import { type ErrorCode, isCode, TidemarkError } from '../../errors.ts';
import {
  attachmentOf,
  type BlobInfo,
  counted,
  emptyRange,
  type Leftover,
  rangePastTheEnd,
  type Storage,
  storageError,
} from './storage.ts';

export interface S3StorageOptions {
  bucket: string;
  /** Folder inside the bucket that holds the repository; empty for the whole bucket. */
  prefix: string;
  /** For S3-compatible servers; AWS when absent. */
  endpoint?: string;
  region: string;
  forcePathStyle?: boolean;
  /** Absent: the SDK's default chain (environment, web identity, instance profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

// The SDK is loaded when an S3Storage is made, not imported, so that commands that never open an S3
// repository do not pay for it.
const require = createRequire(import.meta.url);
const MiB = 1024 * 1024;
/** Above this size a put is a multipart upload; S3 allows 10,000 parts, so blobs up to 78 GiB fit. */
const multipartThreshold = 16 * MiB;
const partSize = 8 * MiB;
/** S3 presigned URLs (signature version 4) are valid for at most 7 days. */
const maxLinkSeconds = 7 * 24 * 3600;

/** Blobs as objects in an S3 bucket under `prefix/`; a multipart upload becomes visible only when complete. */
export class S3Storage implements Storage {
  readonly description: string;
  private readonly client: S3Client;
  private readonly sdk: typeof import('@aws-sdk/client-s3');
  private readonly bucket: string;
  private readonly keyPrefix: string;

  constructor(private readonly options: S3StorageOptions) {
    const prefix = options.prefix.replace(/^\/+|\/+$/g, '');
    this.bucket = options.bucket;
    this.keyPrefix = prefix ? `${prefix}/` : '';
    this.description = `s3://${options.bucket}/${prefix}${options.endpoint ? `?endpoint=${options.endpoint}` : ''}`;
    this.sdk = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
    this.client = new this.sdk.S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      // retrying.ts retries, so that retry policy and its logging live in one place.
      maxAttempts: 1,
      // Checked only when asked for: the repository authenticates what it reads, and versitygw (posix, sidecar
      // metadata) sends the previous version's x-amz-checksum-crc32 while an object is being replaced.
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
    });
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    // S3 ignores an empty range (`bytes=5-4`) and sends the whole object.
    if (range?.length === 0) return emptyRange(this, name, range);
    try {
      const response = await this.client.send(
        new this.sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: this.keyPrefix + name,
          Range: range && `bytes=${range.offset}-${range.offset + range.length - 1}`,
        }),
      );
      const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array();
      const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (range && data.length !== range.length) throw rangePastTheEnd(this, name, range, data.length);
      return data;
    } catch (error) {
      throw this.mapError('get', name, error);
    }
  }

  async put(name: string, data: Buffer): Promise<void> {
    const params = { Bucket: this.bucket, Key: this.keyPrefix + name, Body: data, ContentLength: data.length };
    try {
      if (data.length <= multipartThreshold) await this.client.send(new this.sdk.PutObjectCommand(params));
      else {
        const { Upload } = require('@aws-sdk/lib-storage') as typeof import('@aws-sdk/lib-storage');
        await new Upload({ client: this.client, params, partSize, queueSize: 4 }).done();
      }
    } catch (error) {
      throw this.mapError('put', name, error);
    }
  }

  /** A multipart upload of 8 MiB parts, two in flight, completed (and so visible) at the stream's end. */
  async putStream(name: string, data: Readable, options: { contentType?: string } = {}): Promise<number> {
    const body = counted(data);
    const { Upload } = require('@aws-sdk/lib-storage') as typeof import('@aws-sdk/lib-storage');
    try {
      await new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: this.keyPrefix + name,
          Body: body.stream,
          ContentType: options.contentType,
        },
        partSize,
        queueSize: 2,
      }).done();
    } catch (error) {
      throw this.mapError('put', name, error);
    }
    return body.bytes();
  }

  async presign(name: string, expiresInSeconds: number): Promise<string> {
    if (expiresInSeconds > maxLinkSeconds)
      throw storageError(
        this,
        'InvalidArgument',
        'presign',
        name,
        `an S3 link lasts at most 7 days, not ${expiresInSeconds} s`,
      );
    const { getSignedUrl } = require('@aws-sdk/s3-request-presigner') as typeof import('@aws-sdk/s3-request-presigner');
    const command = new this.sdk.GetObjectCommand({
      Bucket: this.bucket,
      Key: this.keyPrefix + name,
      ResponseContentDisposition: attachmentOf(name),
    });
    return getSignedUrl(this.client, command, { expiresIn: expiresInSeconds });
  }

  location(name: string): string {
    return `s3://${this.bucket}/${this.keyPrefix}${name}`;
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    try {
      const response = await this.client.send(
        new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + name }),
      );
      return { name, size: response.ContentLength ?? 0 };
    } catch (error) {
      const mapped = this.mapError('stat', name, error);
      if (mapped.code !== 'NotFound') throw mapped;
    }
    // A HEAD answer has no body, so "no such key" and "no such bucket" look alike until we ask about the bucket.
    await this.headBucket('stat', name);
    return undefined;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    let token: string | undefined;
    do {
      const page = await this.client
        .send(
          new this.sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.keyPrefix + prefix,
            ContinuationToken: token,
          }),
        )
        .catch((error) => {
          throw this.mapError('list', prefix, error);
        });
      for (const object of page.Contents ?? [])
        if (object.Key) yield { name: object.Key.slice(this.keyPrefix.length), size: object.Size ?? 0 };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + name }));
    } catch (error) {
      const mapped = this.mapError('delete', name, error);
      if (mapped.code !== 'NotFound') throw mapped;
    }
  }

  /** Multipart uploads never completed nor aborted (a killed writer): invisible to `list`, but stored and billed. */
  async *leftovers(): AsyncIterable<Leftover> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client
        .send(
          new this.sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.keyPrefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        )
        .catch((error) => {
          throw this.mapError('list', 'multipart uploads', error);
        });
      for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
        if (!Key || !UploadId) continue;
        yield {
          name: Key.slice(this.keyPrefix.length),
          size: await this.uploadedBytes(Key, UploadId),
          modified: Initiated ?? new Date(0),
          remove: () => this.abortUpload(Key, UploadId),
        };
      }
      [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [];
    } while (keyMarker);
  }

  private async uploadedBytes(key: string, uploadId: string): Promise<number> {
    const parts = await this.client
      .send(new this.sdk.ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
      .catch((error) => {
        throw this.mapError('list', `parts of ${key}`, error);
      });
    return (parts.Parts ?? []).reduce((sum, part) => sum + (part.Size ?? 0), 0);
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (error) {
      const mapped = this.mapError('delete', `upload ${uploadId} of ${key}`, error);
      if (mapped.code !== 'NotFound') throw mapped;
    }
  }

  async ensureContainer(): Promise<void> {
    // Asking first keeps credentials that may use a bucket but not create one working.
    try {
      await this.headBucket('ensureContainer', '');
      return;
    } catch (error) {
      if (!isCode(error, 'ContainerMissing')) throw error;
    }
    const { region } = this.options;
    const configuration =
      region === 'us-east-1' ? undefined : { LocationConstraint: region as BucketLocationConstraint };
    try {
      await this.client.send(
        new this.sdk.CreateBucketCommand({ Bucket: this.bucket, CreateBucketConfiguration: configuration }),
      );
    } catch (error) {
      if ((error as Error).name !== 'BucketAlreadyOwnedByYou') throw this.mapError('ensureContainer', '', error);
    }
  }

  private async headBucket(operation: string, name: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const mapped = this.mapError(operation, name, error);
      if (mapped.code === 'NotFound')
        throw storageError(this, 'ContainerMissing', operation, name, 'no such bucket', error);
      throw mapped;
    }
  }

  private mapError(operation: string, name: string, error: unknown): TidemarkError {
    if (error instanceof TidemarkError) return error;
    const { code, reason } = classify(error);
    return storageError(this, code, operation, name, reason, error);
  }
}

const codesByName: Record<string, ErrorCode> = {
  NoSuchKey: 'NotFound',
  NotFound: 'NotFound',
  NoSuchBucket: 'ContainerMissing',
  AccessDenied: 'AccessDenied',
  Forbidden: 'AccessDenied',
  InvalidAccessKeyId: 'AccessDenied',
  SignatureDoesNotMatch: 'AccessDenied',
  InvalidRange: 'InvalidArgument',
  SlowDown: 'Transient',
  Throttling: 'Transient',
  ThrottlingException: 'Transient',
  RequestLimitExceeded: 'Transient',
  RequestTimeout: 'Transient',
  TimeoutError: 'Transient',
};

const transientNetworkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** S3 errors carry the S3 error code as `name` and the HTTP status in `$metadata`; network errors a Node `code`. */
function classify(error: unknown): { code: ErrorCode; reason: string } {
  const e = error as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    errors?: Array<{ code?: string }>;
  };
  const status = e.$metadata?.httpStatusCode;
  const networkCode = e.code ?? e.errors?.[0]?.code;
  const reason = [e.name, status && `HTTP ${status}`, networkCode, e.message !== e.name && e.message]
    .filter(Boolean)
    .join(', ');
  return { code: codesByName[e.name ?? ''] ?? codeOfStatus(status) ?? codeOfNetwork(networkCode), reason };
}

function codeOfStatus(status: number | undefined): ErrorCode | undefined {
  if (status === undefined) return undefined;
  if (status === 403) return 'AccessDenied';
  if (status === 404) return 'NotFound';
  if (status === 416) return 'InvalidArgument';
  if (status >= 500 || status === 429) return 'Transient';
  return undefined;
}

function codeOfNetwork(networkCode: string | undefined): ErrorCode {
  return transientNetworkCodes.has(networkCode ?? '') ? 'Transient' : 'Internal';
}
