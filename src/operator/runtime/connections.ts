import https from 'node:https';
import type * as k8s from '@kubernetes/client-node';

/**
 * Makes every API call of `kc` share one keep-alive HTTPS agent. @kubernetes/client-node builds a
 * new agent per request, so each call pays a TLS handshake and leaves a socket and session cache
 * to the garbage collector; an operator making thousands of calls at start-up feels both. Token
 * and basic auth travel in headers, set per request as before; only the transport is shared.
 */
export function reuseConnections(kc: k8s.KubeConfig): k8s.KubeConfig {
  const authenticate = kc.applySecurityAuthentication.bind(kc);
  let shared: https.Agent | undefined;
  kc.applySecurityAuthentication = async (context) => {
    await authenticate(context);
    const created = context.getAgent();
    if (!(created instanceof https.Agent)) return;
    shared ??= new https.Agent({ ...created.options, keepAlive: true, maxSockets: 32 });
    context.setAgent(shared);
    created.destroy();
  };
  return kc;
}
