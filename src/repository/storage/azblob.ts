import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { ContainerClient, StoragePipelineOptions } from '@azure/storage-blob';
import { type ErrorCode, TidemarkError } from '../../errors.ts';
import {
  attachmentOf,
  type BlobInfo,
  counted,
  emptyRange,
  rangePastTheEnd,
  type Storage,
  storageError,
} from './storage.ts';

export type AzureBlobStorageOptions = { container: string; prefix: string } & (
  | { endpoint: string; accountName: string; accountKey: string }
  | { connectionString: string }
);

const MiB = 1024 * 1024;
const pipelineOptions: StoragePipelineOptions = {
  // retrying.ts retries, so that retry policy and its logging live in one place.
  retryOptions: { maxTries: 1, tryTimeoutInMs: 120_000 },
};

/** Blobs as block blobs in an Azure container under `prefix/`; staged blocks become visible only on commit. */
export class AzureBlobStorage implements Storage {
  readonly description: string;
  private readonly container: ContainerClient;
  private readonly keyPrefix: string;
  private readonly sdk: typeof import('@azure/storage-blob');

  constructor(options: AzureBlobStorageOptions) {
    // Loaded here, not imported, so that commands that never open an Azure repository do not pay for the SDK.
    this.sdk = createRequire(import.meta.url)('@azure/storage-blob') as typeof import('@azure/storage-blob');
    const { BlobServiceClient, StorageSharedKeyCredential } = this.sdk;
    const service =
      'connectionString' in options
        ? BlobServiceClient.fromConnectionString(options.connectionString, pipelineOptions)
        : new BlobServiceClient(
            options.endpoint,
            new StorageSharedKeyCredential(options.accountName, options.accountKey),
            pipelineOptions,
          );
    const prefix = options.prefix.replace(/^\/+|\/+$/g, '');
    this.keyPrefix = prefix ? `${prefix}/` : '';
    this.container = service.getContainerClient(options.container);
    // A connection string may hold a SAS token, which the client keeps in its URL's query.
    const endpoint = new URL(service.url);
    endpoint.search = '';
    this.description = `azblob://${options.container}/${prefix}?endpoint=${endpoint.href.replace(/\/$/, '')}`;
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    // The SDK reads a count of 0 as "to the end".
    if (range?.length === 0) return emptyRange(this, name, range);
    try {
      const response = await this.container
        .getBlobClient(this.keyPrefix + name)
        .download(range?.offset ?? 0, range?.length, { maxRetryRequests: 0 });
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody ?? []) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      if (range && data.length !== range.length) throw rangePastTheEnd(this, name, range, data.length);
      return data;
    } catch (error) {
      throw this.mapError('get', name, error);
    }
  }

  async put(name: string, data: Buffer): Promise<void> {
    try {
      await this.container.getBlockBlobClient(this.keyPrefix + name).uploadData(data, {
        maxSingleShotSize: 16 * MiB,
        blockSize: 8 * MiB,
        concurrency: 4,
      });
    } catch (error) {
      throw this.mapError('put', name, error);
    }
  }

  /** Staged 8 MiB blocks, two in flight, committed (and so visible) at the stream's end. */
  async putStream(name: string, data: Readable, options: { contentType?: string } = {}): Promise<number> {
    const body = counted(data);
    try {
      await this.container
        .getBlockBlobClient(this.keyPrefix + name)
        .uploadStream(body.stream, 8 * MiB, 2, { blobHTTPHeaders: { blobContentType: options.contentType } });
    } catch (error) {
      throw this.mapError('put', name, error);
    }
    return body.bytes();
  }

  /** A SAS link, which needs the account key (not a SAS token in the connection string). */
  async presign(name: string, expiresInSeconds: number): Promise<string> {
    const blob = this.container.getBlobClient(this.keyPrefix + name);
    if (!(blob.credential instanceof this.sdk.StorageSharedKeyCredential))
      throw storageError(
        this,
        'Unsupported',
        'presign',
        name,
        'a SAS link needs the account key (AZURE_STORAGE_KEY, or AccountKey in the connection string)',
      );
    return blob.generateSasUrl({
      permissions: this.sdk.BlobSASPermissions.parse('r'),
      expiresOn: new Date(Date.now() + expiresInSeconds * 1000),
      contentDisposition: attachmentOf(name),
    });
  }

  location(name: string): string {
    return `azblob://${this.container.containerName}/${this.keyPrefix}${name}`;
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    try {
      const properties = await this.container.getBlobClient(this.keyPrefix + name).getProperties();
      return { name, size: properties.contentLength ?? 0 };
    } catch (error) {
      const mapped = this.mapError('stat', name, error);
      if (mapped.code === 'NotFound') return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix: this.keyPrefix + prefix }))
        yield { name: blob.name.slice(this.keyPrefix.length), size: blob.properties.contentLength ?? 0 };
    } catch (error) {
      throw this.mapError('list', prefix, error);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.container.getBlobClient(this.keyPrefix + name).deleteIfExists();
    } catch (error) {
      throw this.mapError('delete', name, error);
    }
  }

  async ensureContainer(): Promise<void> {
    try {
      await this.container.createIfNotExists();
    } catch (error) {
      throw this.mapError('ensureContainer', '', error);
    }
  }

  private mapError(operation: string, name: string, error: unknown): TidemarkError {
    if (error instanceof TidemarkError) return error;
    const e = error as {
      name?: string;
      code?: string;
      statusCode?: number;
      message?: string;
      details?: { errorCode?: string };
    };
    // HEAD answers have no body: the SDK leaves `code` unset and puts the x-ms-error-code header in `details`.
    const code = e.code ?? e.details?.errorCode;
    const reason = [code, e.statusCode && `HTTP ${e.statusCode}`, e.message?.split('\n')[0]].filter(Boolean).join(', ');
    return storageError(this, classify(e.name, code, e.statusCode), operation, name, reason, error);
  }
}

const codes: Record<string, ErrorCode> = {
  BlobNotFound: 'NotFound',
  ContainerNotFound: 'ContainerMissing',
  AuthenticationFailed: 'AccessDenied',
  AuthorizationFailure: 'AccessDenied',
  AuthorizationPermissionMismatch: 'AccessDenied',
  InvalidRange: 'InvalidArgument',
  ServerBusy: 'Transient',
  OperationTimedOut: 'Transient',
  InternalError: 'Transient',
  ECONNREFUSED: 'Transient',
  ECONNRESET: 'Transient',
  ETIMEDOUT: 'Transient',
  EPIPE: 'Transient',
  EAI_AGAIN: 'Transient',
  REQUEST_SEND_ERROR: 'Transient',
};

/** Azure errors carry the service's error code (or a Node network code) as `code` and the HTTP status. */
function classify(name: string | undefined, code: string | undefined, status = 0): ErrorCode {
  const byCode = codes[code ?? ''];
  if (byCode) return byCode;
  if (name === 'AbortError') return 'Transient';
  if (status === 403) return 'AccessDenied';
  if (status === 404) return 'NotFound';
  if (status === 416) return 'InvalidArgument';
  if (status >= 500 || status === 429) return 'Transient';
  return 'Internal';
}
