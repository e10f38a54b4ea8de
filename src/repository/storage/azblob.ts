import { createRequire } from 'node:module';
import type { ContainerClient, StoragePipelineOptions } from '@azure/storage-blob';
import { type ErrorCode, TidemarkError } from '../../errors.ts';
import { type BlobInfo, rangePastTheEnd, type Storage, storageError } from './storage.ts';

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

  constructor(options: AzureBlobStorageOptions) {
    // Loaded here, not imported, so that commands that never open an Azure repository do not pay for the SDK.
    const { BlobServiceClient, StorageSharedKeyCredential } = createRequire(import.meta.url)(
      '@azure/storage-blob',
    ) as typeof import('@azure/storage-blob');
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
    // The SDK reads a count of 0 as "to the end", so an empty range asks for the size instead.
    if (range?.length === 0) {
      const info = await this.stat(name);
      if (!info) throw storageError(this, 'NotFound', 'get', name, 'not found');
      if (range.offset > info.size) throw rangePastTheEnd(this, name, range, info.size);
      return Buffer.alloc(0);
    }
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
