import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { startProcess, waitUntil } from './process.ts';
import { repoRoot } from './tools.ts';

/** Azurite's fixed development account (public, documented by Microsoft; not a secret). */
const accountName = 'devstoreaccount1';
const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  readonly blobEndpoint: string;
  readonly accountName: string;
  readonly accountKey: string;
  readonly connectionString: string;
  readonly logFile: string;
  stop(): Promise<void>;
}

/** Starts Azurite's Blob service (data in memory) on 127.0.0.1, run from `workDir/azurite`. */
export async function startAzurite(workDir: string): Promise<AzuriteServer> {
  const dir = join(workDir, 'azurite');
  const logFile = join(dir, 'azurite.log');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const server = startProcess(
    'azurite-blob',
    join(repoRoot, 'node_modules', '.bin', 'azurite-blob'),
    [
      ...['--blobHost', '127.0.0.1', '--blobPort', String(port), '--inMemoryPersistence'],
      ...['--loose', '--skipApiVersionCheck', '--disableTelemetry', '--silent'],
    ],
    // Azurite refuses --location together with --inMemoryPersistence; cwd keeps any stray file in workDir.
    { logFile, cwd: dir },
  );
  const blobEndpoint = `http://127.0.0.1:${port}/${accountName}`;
  try {
    // Any HTTP answer (even 400 for this bare request) means the server is listening.
    await waitUntil(
      'azurite-blob',
      async () => {
        await (await fetch(blobEndpoint)).arrayBuffer();
        return true;
      },
      {
        timeoutMs: 30_000,
        process: server,
      },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    blobEndpoint,
    accountName,
    accountKey,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${accountName};AccountKey=${accountKey};BlobEndpoint=${blobEndpoint};`,
    logFile,
    stop: () => server.stop(),
  };
}
