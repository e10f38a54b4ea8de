import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess, waitUntil } from './process.ts';
import { goTool } from './tools.ts';

export interface S3Server {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: 'us-east-1';
  readonly logFile: string;
  /** A new path-style client with the root credentials; the caller destroys it. */
  client(options?: { maxAttempts?: number }): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and data (for failure tests). */
  restart(): Promise<void>;
}

/** Starts versitygw (posix backend, sidecar metadata) in `workDir/s3`, listening on 127.0.0.1 only. */
export async function startS3(workDir: string): Promise<S3Server> {
  const dir = join(workDir, 's3');
  const dataDir = join(dir, 'data');
  const metaDir = join(dir, 'meta');
  const logFile = join(dir, 'versitygw.log');
  await mkdir(dataDir, { recursive: true });
  await mkdir(metaDir, { recursive: true });

  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = randomBytes(10).toString('hex').toUpperCase();
  const secretAccessKey = randomBytes(30).toString('base64url');
  const region = 'us-east-1';
  const client = (options: { maxAttempts?: number } = {}) =>
    new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: options.maxAttempts,
    });

  // Credentials go through the environment, so they never show in `ps` or the log.
  const launch = () =>
    startProcess(
      'versitygw',
      goTool('versitygw'),
      ['--port', `127.0.0.1:${port}`, '--region', region, 'posix', '--sidecar', metaDir, dataDir],
      {
        logFile,
        env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey },
      },
    );
  const ready = async (server: ManagedProcess) => {
    const probe = client({ maxAttempts: 1 });
    try {
      await waitUntil('versitygw', async () => Boolean(await probe.send(new ListBucketsCommand({}))), {
        timeoutMs: 30_000,
        process: server,
      });
    } catch (error) {
      await server.stop();
      throw error;
    } finally {
      probe.destroy();
    }
  };

  let server = launch();
  await ready(server);
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    logFile,
    client,
    async createBucket(name) {
      const s3 = client();
      try {
        await s3.send(new CreateBucketCommand({ Bucket: name }));
      } catch (error) {
        throw new Error(`versitygw: creating bucket ${name} failed (${error}); see ${logFile}`, {
          cause: error,
        });
      } finally {
        s3.destroy();
      }
    },
    stop: () => server.stop(),
    async restart() {
      await server.stop();
      server = launch();
      await ready(server);
    },
  };
}
