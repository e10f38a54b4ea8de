import { constants, open, openSync } from 'node:fs';
import { fdCall } from './fd-call.ts';

/** O_NOATIME where the platform has it (Linux), else 0. */
const O_NOATIME = constants.O_NOATIME ?? 0;
/**
 * Never through a symlink, and never waiting: a name the walk listed as a file may be a symlink or a FIFO by the
 * time it is opened (see source-directory.ts); the caller checks what it opened with fstat.
 */
const READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens files for reading without moving their atimes (O_NOATIME), so a backup's own reads do not change what the
 * next backup stores. The kernel allows O_NOATIME only to the file's owner or a process with CAP_FOWNER, else EPERM;
 * then the file is opened plainly, and so are later files of the same owner (tried once per owner, per opener).
 * Resolves to a file descriptor (fs callbacks: a FileHandle costs more than the read of a small file).
 */
export class NoAtimeOpener {
  /** Owners whose files O_NOATIME was refused for. */
  private readonly refused = new Set<number>();

  async open(path: Buffer, owner: number): Promise<number> {
    const flags = this.flagsFor(owner);
    try {
      return await openFd(path, flags);
    } catch (error) {
      if (!this.refusedWith(error, flags, owner)) throw error;
      return openFd(path, READ);
    }
  }

  /** `open`, blocking (small files are read with synchronous calls: see backup.ts). */
  openSync(path: Buffer, owner: number): number {
    const flags = this.flagsFor(owner);
    try {
      return openSync(path, flags);
    } catch (error) {
      if (!this.refusedWith(error, flags, owner)) throw error;
      return openSync(path, READ);
    }
  }

  private flagsFor(owner: number): number {
    return O_NOATIME === 0 || this.refused.has(owner) ? READ : READ | O_NOATIME;
  }

  /** Whether `error` is O_NOATIME refused (then noted for `owner`): open again plainly. */
  private refusedWith(error: unknown, flags: number, owner: number): boolean {
    if ((flags & O_NOATIME) === 0 || (error as NodeJS.ErrnoException).code !== 'EPERM') return false;
    this.refused.add(owner);
    return true;
  }

  /** Whether files of `owner` are opened plainly (O_NOATIME was refused for one). */
  plainFor(owner: number): boolean {
    return this.refused.has(owner);
  }
}

function openFd(path: Buffer, flags: number): Promise<number> {
  return fdCall((done) => open(path, flags, done));
}
