import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONNECTION_ENV } from '../../src/sources/connection.ts';
import { runCommand } from './process.ts';
import { systemTool } from './tools.ts';

/** PEM files of a throw-away CA, a server certificate for 127.0.0.1/localhost, and a client certificate. */
export interface TestCertificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/**
 * Makes a CA and two certificates it signs with openssl: the server's (SAN localhost and 127.0.0.1)
 * and a client's whose common name is `clientUser` (PostgreSQL's `cert` authentication maps the CN to
 * the role). Keys are written 0600.
 */
export async function makeCertificates(dir: string, clientUser: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const openssl = systemTool('openssl', 'openssl');
  const logFile = join(dir, 'openssl.log');
  const run = (args: string[]) => runCommand(openssl, args, { logFile });
  const path = (name: string) => join(dir, name);
  const key = async (name: string) => {
    await run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path(name)]);
  };
  await key('ca.key');
  await run([
    ...['req', '-x509', '-new', '-key', path('ca.key'), '-subj', '/CN=tidemark test CA', '-days', '2'],
    ...['-out', path('ca.crt')],
  ]);
  const sign = async (name: string, subject: string, extensions: string) => {
    await key(`${name}.key`);
    await run(['req', '-new', '-key', path(`${name}.key`), '-subj', subject, '-out', path(`${name}.csr`)]);
    await writeFile(path(`${name}.ext`), extensions);
    await run([
      ...['x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.crt'), '-CAkey', path('ca.key')],
      ...['-CAcreateserial', '-days', '2', '-extfile', path(`${name}.ext`), '-out', path(`${name}.crt`)],
    ]);
  };
  await sign('server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await sign('client', `/CN=${clientUser}`, 'extendedKeyUsage=clientAuth\n');
  return {
    ca: path('ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
  };
}

/**
 * The agent's environment for a client-certificate connection (verify-full) with no password: `dropped`
 * names the variables of the test's own server (password, user...) that must not reach the agent.
 */
export function certificateEnv(
  certificates: TestCertificates,
  dropped: string[],
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [CONNECTION_ENV.tlsMode]: 'verify-full',
    [CONNECTION_ENV.tlsCa]: certificates.ca,
    [CONNECTION_ENV.tlsCert]: certificates.clientCert,
    [CONNECTION_ENV.tlsKey]: certificates.clientKey,
    ...extra,
  };
  for (const name of dropped) delete env[name];
  return env;
}
