import {
  type BigIntStats,
  close,
  closeSync,
  constants,
  existsSync,
  fstat,
  fstatSync,
  open,
  openSync,
  stat,
  statSync,
} from 'node:fs';
import { fdCall } from './fd-call.ts';

/**
 * Where the names of an open directory are reached through its descriptor: /proc/<pid>/fd/<fd>/<name> makes the
 * kernel start from the directory the descriptor holds and resolve only <name> (as openat(2) and fstatat(2) do,
 * which Node lacks). The pid rather than "self": the file metadata helper, a child process, resolves these paths
 * too. Undefined where there is no such /proc (not Linux), and unused for a directory when it refuses access (a
 * process that changed its user is not dumpable, and its /proc/<pid>/fd is root's): names are then reached by
 * path, the directory checked once opened, which leaves a window between the check and each name's use.
 */
const FD_DIRECTORY =
  process.platform === 'linux' && existsSync(`/proc/${process.pid}/fd`) ? `/proc/${process.pid}/fd` : undefined;

const SLASH = Buffer.from('/');

/** A name the walk listed that now names something else: another file, a symlink, a FIFO, a device. */
export class ReplacedError extends Error {
  readonly code = 'EREPLACED';
  constructor(what: string) {
    super(`${what} was replaced while being read`);
  }
}

/**
 * A directory of the tree being backed up, held open while the walk works below it. Everything in it is reached
 * relative to the descriptor (see FD_DIRECTORY), so renaming a directory the walk has opened, or replacing it with
 * a symlink, cannot lead the walk outside the tree: whoever can write to a volume can rename its names while a
 * backup walks it, and a symlink to /proc/self/environ (the agent's credentials) or to a mounted Secret must never
 * be followed into a snapshot.
 */
export class SourceDirectory {
  private constructor(
    private readonly fd: number,
    /** The prefix of every name in the directory. */
    readonly base: Buffer,
    /** Whether `base` is the descriptor's (else the directory's path: see FD_DIRECTORY). */
    readonly throughDescriptor: boolean,
  ) {}

  /**
   * Opens the directory at `path` (through its parent's descriptor, never through a symlink) and checks that it
   * is the one `listed` (the lstat the walk made when it listed its parent): else ReplacedError. With
   * synchronous calls when `sync` (a fast file system: see SyncWhileFast), else on the thread pool.
   */
  static async open(path: Buffer, listed: BigIntStats, sync: boolean): Promise<SourceDirectory> {
    const calls = sync ? SYNC : ASYNC;
    let fd: number;
    try {
      fd = await calls.open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw code === 'ELOOP' || code === 'ENOTDIR' ? new ReplacedError('a directory') : error;
    }
    try {
      const throughFd = FD_DIRECTORY ? await reachable(Buffer.from(`${FD_DIRECTORY}/${fd}`), calls) : undefined;
      const opened = throughFd?.stat ?? (await calls.fstat(fd));
      if (!opened.isDirectory() || !sameFile(opened, listed)) throw new ReplacedError('a directory');
      return new SourceDirectory(fd, throughFd?.path ?? path, throughFd !== undefined);
    } catch (error) {
      close(fd, () => {});
      throw error;
    }
  }

  /** The path of `name` in this directory. */
  child(name: Buffer): Buffer {
    return Buffer.concat([this.base, SLASH, name]);
  }

  /** Closes the descriptor: only once nothing can still reach a name through it (the number is reused). */
  close(sync = false): void {
    if (sync) closeSync(this.fd);
    else close(this.fd, () => {});
  }
}

/** Whether two stats are of the same file (device and inode). */
function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Checks that the file open as `opened` (its fstat) is the regular file the walk listed as `listed`: else
 * ReplacedError (renamed over, or replaced by a FIFO, a device or anything else since).
 */
export function checkSameRegularFile(listed: BigIntStats, opened: BigIntStats): void {
  if (!opened.isFile() || !sameFile(opened, listed)) throw new ReplacedError('a file');
}

/** The stat of what `path` leads to, undefined when access to it is refused. */
async function reachable(path: Buffer, calls: Calls): Promise<{ path: Buffer; stat: BigIntStats } | undefined> {
  try {
    return { path, stat: await calls.stat(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return undefined;
    throw error;
  }
}

export function fstatBigint(fd: number): Promise<BigIntStats> {
  return fdCall((done) => fstat(fd, { bigint: true }, done));
}

/** The calls opening a directory makes, made on the spot or on the thread pool. */
interface Calls {
  open(path: Buffer, flags: number): number | Promise<number>;
  stat(path: Buffer): BigIntStats | Promise<BigIntStats>;
  fstat(fd: number): BigIntStats | Promise<BigIntStats>;
}

const SYNC: Calls = {
  open: (path, flags) => openSync(path, flags),
  stat: (path) => statSync(path, { bigint: true }),
  fstat: (fd) => fstatSync(fd, { bigint: true }),
};

const ASYNC: Calls = {
  open: (path, flags) => fdCall((done) => open(path, flags, done)),
  stat: (path) => fdCall((done) => stat(path, { bigint: true }, done)),
  fstat: fstatBigint,
};
