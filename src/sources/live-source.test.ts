import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveSources, refuseLiveSource } from './live-source.ts';

const dns: Record<string, string[]> = {
  'db.prod.svc.cluster.local': ['10.0.0.5'],
  'db-alias.prod': ['10.0.0.5'],
  'qa-db': ['10.0.0.9'],
};
const resolve = async (host: string) => {
  if (/^[0-9.]+$/.test(host)) return [host];
  const found = dns[host];
  if (!found) throw new Error(`ENOTFOUND ${host}`);
  return found;
};
const target = (host: string, port = 5432) => ({ host, port, description: `postgresql://u@${host}:${port}/shop` });
const source = { name: 'source db of policy p', host: 'db.prod.svc.cluster.local', port: 5432 };

test('the same server however spelled is refused: case, trailing dot, IP, another DNS name', async () => {
  for (const host of ['DB.prod.svc.cluster.local.', '10.0.0.5', 'db-alias.prod'])
    await assert.rejects(refuseLiveSource(target(host), [source], resolve), /live database of source db of policy p/);
});

test('another port, another address or an unresolvable name goes ahead', async () => {
  await refuseLiveSource(target('db.prod.svc.cluster.local', 5433), [source], resolve);
  await refuseLiveSource(target('qa-db'), [source], resolve);
  await refuseLiveSource(target('nowhere'), [source], resolve);
});

test('reads the candidates the Job passes, skipping one whose Secret lacked host or port', () => {
  const env = {
    TIDEMARK_LIVE_SOURCE_0_NAME: 'a',
    TIDEMARK_LIVE_SOURCE_0_HOST: 'h',
    TIDEMARK_LIVE_SOURCE_0_PORT: '5432',
    TIDEMARK_LIVE_SOURCE_1_NAME: 'b',
    TIDEMARK_LIVE_SOURCE_2_NAME: 'c',
    TIDEMARK_LIVE_SOURCE_2_HOST: 'h2',
    TIDEMARK_LIVE_SOURCE_2_PORT: '3306',
  };
  assert.deepEqual(liveSources(env), [
    { name: 'a', host: 'h', port: 5432 },
    { name: 'c', host: 'h2', port: 3306 },
  ]);
});
