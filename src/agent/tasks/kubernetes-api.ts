import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { required } from './env.ts';

/** The token directory, a mount path (so it follows the pod's volume) rather than the fixed path loadFromCluster reads. */
export const SERVICE_ACCOUNT_DIR_ENV = 'TIDEMARK_SERVICE_ACCOUNT_DIR';
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod's own API access, with the token from its ServiceAccount directory (tasks that write an object: catalog, export). */
export function inClusterConfig(env: NodeJS.ProcessEnv): k8s.KubeConfig {
  const dir = env[SERVICE_ACCOUNT_DIR_ENV] ?? SERVICE_ACCOUNT_DIR;
  const host = required(env, 'KUBERNETES_SERVICE_HOST');
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'in-cluster',
        server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
        caFile: `${dir}/ca.crt`,
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'agent', token: readFileSync(`${dir}/token`, 'utf8').trim() }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'agent' }],
    currentContext: 'in-cluster',
  });
  return kc;
}
