import { constants, open } from 'node:fs';

/** O_NOATIME where the platform has it (Linux), else 0. */
const O_NOATIME = constants.O_NOATIME ?? 0;

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
    if (O_NOATIME === 0 || this.refused.has(owner)) return openFd(path, constants.O_RDONLY);
    try {
      return await openFd(path, constants.O_RDONLY | O_NOATIME);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
      this.refused.add(owner);
      return openFd(path, constants.O_RDONLY);
    }
  }

  /** Whether files of `owner` are opened plainly (O_NOATIME was refused for one). */
  plainFor(owner: number): boolean {
    return this.refused.has(owner);
  }
}

function openFd(path: Buffer, flags: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, (error, fd) => (error ? reject(error) : resolve(fd))));
}
