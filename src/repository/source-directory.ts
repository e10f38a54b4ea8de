import { type BigIntStats, close, constants, existsSync, fstat, open, stat } from 'node:fs';

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
    /** Its path (what `base` is when the descriptor cannot be used). */
    readonly path: Buffer,
  ) {}

  /**
   * Opens the directory at `path` (through its parent's descriptor, never through a symlink; `byPath`: its path
   * from the root of the source) and checks that it is the one `listed` (the lstat the walk made when it listed
   * its parent): else ReplacedError.
   */
  static async open(path: Buffer, byPath: Buffer, listed: BigIntStats): Promise<SourceDirectory> {
    let fd: number;
    try {
      fd = await openDirectory(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw code === 'ELOOP' || code === 'ENOTDIR' ? new ReplacedError('a directory') : error;
    }
    try {
      const throughFd = FD_DIRECTORY ? await reachable(Buffer.from(`${FD_DIRECTORY}/${fd}`)) : undefined;
      const opened = throughFd?.stat ?? (await fstatBigint(fd));
      if (!opened.isDirectory() || !sameFile(opened, listed)) throw new ReplacedError('a directory');
      return new SourceDirectory(fd, throughFd?.path ?? path, byPath);
    } catch (error) {
      close(fd, () => {});
      throw error;
    }
  }

  /** The path of `name` in this directory. */
  child(name: Buffer): Buffer {
    return Buffer.concat([this.base, SLASH, name]);
  }

  /** The path of `name` by the directory's own path: for another process that cannot use `base` (see FD_DIRECTORY). */
  childByPath(name: Buffer): Buffer {
    return Buffer.concat([this.path, SLASH, name]);
  }

  /** Whether names are reached through the descriptor. */
  get throughDescriptor(): boolean {
    return !this.base.equals(this.path);
  }

  /** Closes the descriptor: only once nothing can still reach a name through it (the number is reused). */
  close(): void {
    close(this.fd, () => {});
  }
}

/** Whether two stats are of the same file (device and inode). */
export function sameFile(a: BigIntStats, b: BigIntStats): boolean {
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
async function reachable(path: Buffer): Promise<{ path: Buffer; stat: BigIntStats } | undefined> {
  try {
    return { path, stat: await statBigint(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return undefined;
    throw error;
  }
}

function statBigint(path: Buffer): Promise<BigIntStats> {
  return new Promise((resolve, reject) =>
    stat(path, { bigint: true }, (error, stats) => (error ? reject(error) : resolve(stats))),
  );
}

function openDirectory(path: Buffer): Promise<number> {
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
  return new Promise((resolve, reject) => open(path, flags, (error, fd) => (error ? reject(error) : resolve(fd))));
}

export function fstatBigint(fd: number): Promise<BigIntStats> {
  return new Promise((resolve, reject) =>
    fstat(fd, { bigint: true }, (error, stats) => (error ? reject(error) : resolve(stats))),
  );
}
