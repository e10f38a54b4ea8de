import { lookup } from 'node:dns/promises';
import { TidemarkError } from '../errors.ts';

/**
 * The live sources a restore target might be under another spelling, as the restore Job passes them:
 * `<prefix>_<i>_NAME` (which policy source, for the refusal), `<prefix>_<i>_HOST` and `_PORT` (from
 * that source's connection Secret, which the agent may read and the operator may not).
 */
export const LIVE_SOURCE_ENV = 'TIDEMARK_LIVE_SOURCE';

export interface LiveSource {
  name: string;
  host: string;
  port: number;
}

export function liveSources(env: NodeJS.ProcessEnv): LiveSource[] {
  const sources: LiveSource[] = [];
  for (let i = 0; env[`${LIVE_SOURCE_ENV}_${i}_NAME`] !== undefined; i++) {
    const host = env[`${LIVE_SOURCE_ENV}_${i}_HOST`];
    const port = Number(env[`${LIVE_SOURCE_ENV}_${i}_PORT`]);
    if (host && Number.isInteger(port))
      sources.push({ name: env[`${LIVE_SOURCE_ENV}_${i}_NAME`] as string, host, port });
  }
  return sources;
}

export type Resolve = (host: string) => Promise<string[]>;

const resolveAll: Resolve = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/**
 * Refuses a restore whose target server is one of `sources` (the operator passes only sources that
 * back up a database of the target's name): same port, and the same host however spelled: names
 * compared without case or a trailing dot, and otherwise by the addresses they resolve to (a name
 * and its IP, two DNS names of one Service). A server reached through two different addresses (a
 * proxy, another interface) is not recognised: docs/sources.md.
 */
export async function refuseLiveSource(
  target: { host: string; port: number; description: string },
  sources: LiveSource[],
  resolve: Resolve = resolveAll,
  /** The refusal's message; default: a restore's. */
  refusal: (source: LiveSource) => string = (source) =>
    `restore target ${target.description} is the live database of ${source.name} (${source.host}:${source.port}, the same server): restoring over a live source needs target.original: true on a restore of that source; nothing was changed`,
): Promise<void> {
  const candidates = sources.filter((s) => s.port === target.port);
  if (!candidates.length) return;
  const addresses = async (host: string) => new Set(await resolve(host).catch(() => [] as string[]));
  const targetAddresses = await addresses(target.host);
  for (const source of candidates) {
    const sameName = normalize(source.host) === normalize(target.host);
    const shared = sameName || [...(await addresses(source.host))].some((a) => targetAddresses.has(a));
    if (shared) throw new TidemarkError('InvalidArgument', refusal(source));
  }
}

const normalize = (host: string) =>
  host
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[|\]$/g, '');
