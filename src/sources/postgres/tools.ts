import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TidemarkError } from '../../errors.ts';

const DEBIAN_ROOT = '/usr/lib/postgresql';

export interface PostgresTools {
  pgDump: string;
  pgDumpAll: string;
  psql: string;
  /** pg_dump's version as `server_version_num` would give it (150018 for 15.18). */
  pgDumpVersion: number;
  /** coreutils' stdbuf, when on the PATH (see dump.ts). */
  stdbuf: string | undefined;
}

/**
 * pg_dump, pg_dumpall and psql of the newest version found, from the directories of the PATH and
 * Debian's /usr/lib/postgresql/<version>/bin: pg_dump reads every server up to its own major (and back
 * to 9.2), so the newest serves every server, and the three come from one directory so their versions
 * agree. On a tie the PATH's order decides.
 */
export async function findTools(searchPath = process.env.PATH ?? ''): Promise<PostgresTools> {
  const debianDirs = existsSync(DEBIAN_ROOT)
    ? readdirSync(DEBIAN_ROOT)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => join(DEBIAN_ROOT, v, 'bin'))
    : [];
  const pathDirs = searchPath.split(':').filter(Boolean);
  const candidates = [...new Set([...pathDirs, ...debianDirs])].filter((dir) => existsSync(join(dir, 'pg_dump')));
  const versions = await Promise.all(candidates.map((dir) => toolVersion(join(dir, 'pg_dump'))));
  let best: { dir: string; version: number } | undefined;
  candidates.forEach((dir, i) => {
    const version = versions[i];
    if (version !== undefined && (!best || version > best.version)) best = { dir, version };
  });
  if (!best)
    throw new TidemarkError(
      'Unsupported',
      `pg_dump not found on the PATH or in ${DEBIAN_ROOT}/<version>/bin: install the PostgreSQL client tools`,
    );
  const { dir, version } = best;
  const find = (name: string): string => {
    if (existsSync(join(dir, name))) return join(dir, name);
    throw new TidemarkError(
      'Unsupported',
      `${name} is missing beside ${join(dir, 'pg_dump')}: install the PostgreSQL client tools`,
    );
  };
  const stdbuf = pathDirs.map((d) => join(d, 'stdbuf')).find((path) => existsSync(path));
  return {
    pgDump: join(dir, 'pg_dump'),
    pgDumpAll: find('pg_dumpall'),
    psql: find('psql'),
    pgDumpVersion: version,
    stdbuf,
  };
}

/** A pg_dump's version, or undefined when it does not run or says something else. */
async function toolVersion(pgDump: string): Promise<number | undefined> {
  try {
    const { stdout } = await promisify(execFile)(pgDump, ['--version']);
    return parseToolVersion(stdout);
  } catch {
    return undefined;
  }
}

/** `pg_dump (PostgreSQL) 15.18 (Debian ...)` → 150018; `9.6.24` → 90624; `17devel` → 170000. */
export function parseToolVersion(output: string): number | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output);
  if (!match) return undefined;
  const [major, minor, patch] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number];
  return major >= 10 ? major * 10000 + minor : major * 10000 + minor * 100 + patch;
}

/** The major version of a `server_version_num`, comparable between a server and a tool: 150018 → 150000. */
export function majorOf(versionNum: number): number {
  return versionNum >= 100000 ? Math.floor(versionNum / 10000) * 10000 : Math.floor(versionNum / 100) * 100;
}

/** 150000 → `15`, 90600 → `9.6`. */
export function formatMajor(versionNum: number): string {
  const major = majorOf(versionNum);
  return major >= 100000 ? `${major / 10000}` : `${Math.floor(major / 10000)}.${(major / 100) % 100}`;
}
