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
 * pg_dump, pg_dumpall and psql, from the first directory of the PATH that has pg_dump, else from the
 * newest /usr/lib/postgresql/<version>/bin (Debian's layout); the three come from one directory when it
 * has them, so their versions agree.
 */
export async function findTools(searchPath = process.env.PATH ?? ''): Promise<PostgresTools> {
  const debianDirs = existsSync(DEBIAN_ROOT)
    ? readdirSync(DEBIAN_ROOT)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => join(DEBIAN_ROOT, v, 'bin'))
    : [];
  const pathDirs = searchPath.split(':').filter(Boolean);
  const dirs = [...pathDirs, ...debianDirs];
  const find = (name: string, preferred?: string): string => {
    for (const dir of preferred ? [preferred, ...dirs] : dirs) if (existsSync(join(dir, name))) return join(dir, name);
    throw new TidemarkError(
      'Unsupported',
      `${name} not found on the PATH or in ${DEBIAN_ROOT}/<version>/bin: install the PostgreSQL client tools`,
    );
  };
  const pgDump = find('pg_dump');
  const dir = pgDump.slice(0, -'/pg_dump'.length);
  const { stdout } = await promisify(execFile)(pgDump, ['--version']);
  const pgDumpVersion = parseToolVersion(stdout);
  if (pgDumpVersion === undefined)
    throw new TidemarkError('Unsupported', `cannot read the version of ${pgDump} from "${stdout.trim()}"`);
  const stdbuf = pathDirs.map((d) => join(d, 'stdbuf')).find((path) => existsSync(path));
  return { pgDump, pgDumpAll: find('pg_dumpall', dir), psql: find('psql', dir), pgDumpVersion, stdbuf };
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
