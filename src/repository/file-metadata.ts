import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { lutimes, utimes } from 'node:fs/promises';
import { createInterface } from 'node:readline';

/** One extended attribute: its name and raw value. */
export interface Xattr {
  name: string;
  value: Buffer;
}

/**
 * What Node's fs cannot do: set times to the nanosecond (Node passes seconds as a double, so a time of today
 * lands on a multiple of ~0.24 µs; Node turns a negative number into "now") and read or write extended attributes (Node has no
 * xattr API). Symlinks are never followed.
 */
export interface FileMetadataIo {
  /** True when times are exact to the nanosecond and extended attributes are kept. */
  readonly exact: boolean;
  setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, symlink: boolean): Promise<void>;
  /**
   * Every attribute of each name of one directory, sorted by name (none on a filesystem without extended
   * attributes), in the order of `names`; the error of a name whose attributes could not be read in its place.
   * One request for all of them: ask a bounded batch of names at a time.
   */
  readXattrsIn(dir: Buffer, names: readonly Buffer[]): Promise<(Xattr[] | NodeJS.ErrnoException)[]>;
  setXattr(path: Buffer, xattr: Xattr): Promise<void>;
  close(): void;
}

/**
 * Namespaces kept: `user.*` (what applications store) and POSIX ACLs (`system.posix_acl_access`,
 * `system.posix_acl_default`). `security.*` (SELinux labels, file capabilities) belongs to the host's policy
 * and `trusted.*` to root-only services; neither is carried to another host.
 */
export function keptXattr(name: string): boolean {
  return name.startsWith('user.') || name === 'system.posix_acl_access' || name === 'system.posix_acl_default';
}

/** Linux syscall numbers of utimensat, lsetxattr, lgetxattr, llistxattr (asm-generic for arm64). */
const SYSCALLS: Partial<Record<NodeJS.Architecture, [number, number, number, number]>> = {
  x64: [280, 189, 192, 195],
  arm64: [88, 6, 9, 12],
};

/**
 * The helper: Perl (perl-base is part of every Debian image, the agent's included) making the four syscalls for
 * us, one request per line, arguments hex-encoded (paths are any bytes). Answers `OK ...` or `E <errno>`, one line
 * per request in order. Requests go in batches (the lines of one event-loop turn in one write) and the answers to
 * what one read brought in one write: a write per file was most of a restore's metadata cost.
 * `D <dir> <name>...` reads the extended attributes of many names of one directory (a request and an answer line
 * per file were a tenth of a small-files backup's main thread); its answer carries only the names that have
 * attributes (`<index>:<name>=<value>`, one per attribute) or failed (`<index>!<errno>`).
 */
const HELPER = String.raw`
use strict; use warnings;
my ($UTIMENSAT, $LSETXATTR, $LGETXATTR, $LLISTXATTR) = map { $_ + 0 } @ARGV;
sub fail { print "E " . ($! + 0) . "\n"; }
sub sized { my ($call, @args) = @_;
  for (1 .. 3) {
    my $n = syscall($call, @args, 0, 0); return undef if $n < 0; return "" if $n == 0;
    my $buf = "\0" x ($n + 1); my $m = syscall($call, @args, $buf, $n + 1);
    return substr($buf, 0, $m) if $m >= 0; return undef if $! + 0 != 34;
  }
  return undef;
}
sub xattrs { my ($path) = @_;
  my $names = sized($LLISTXATTR, $path);
  if (!defined $names) { return $! + 0 == 95 ? (0) : ($! + 0); }
  my @pairs;
  for my $name (grep { length } split /\0/, $names) {
    my $value = sized($LGETXATTR, $path, $name);
    if (!defined $value) { next if $! + 0 == 61; return $! + 0; }
    push @pairs, unpack("H*", $name) . "=" . unpack("H*", $value);
  }
  return (0, @pairs);
}
sub answer { my ($line) = @_;
  my ($op, @a) = split / /, $line; my $path = defined $a[0] ? pack("H*", $a[0]) : "";
  if ($op eq 'P') { print "OK\n"; }
  elsif ($op eq 'T') {
    my $times = pack("q4", $a[1], $a[2], $a[3], $a[4]);
    syscall($UTIMENSAT, -100, $path, $times, 0x100) == 0 ? print "OK\n" : fail();
  } elsif ($op eq 'S') {
    my ($name, $value) = (pack("H*", $a[1]), pack("H*", defined $a[2] ? $a[2] : ""));
    syscall($LSETXATTR, $path, $name, $value, length($value) + 0, 0) == 0 ? print "OK\n" : fail();
  } elsif ($op eq 'D') {
    my @out;
    for my $i (1 .. $#a) {
      my ($err, @pairs) = xattrs($path . "/" . pack("H*", $a[$i]));
      push @out, $err ? ($i - 1) . "!$err" : map { ($i - 1) . ":$_" } @pairs;
    }
    print "OK @out\n";
  } else { print "E 22\n"; }
}
my $in = '';
while (sysread(STDIN, $in, 1 << 16, length $in)) {
  my @lines = split /\n/, $in, -1; $in = pop @lines;
  answer($_) for @lines;
  $| = 1; $| = 0;
}
`;

/** The errno names a failure is reported with, as Node's fs would. */
const ERRNO: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  7: 'E2BIG',
  13: 'EACCES',
  22: 'EINVAL',
  28: 'ENOSPC',
  30: 'EROFS',
  34: 'ERANGE',
  36: 'ENAMETOOLONG',
  61: 'ENODATA',
  95: 'ENOTSUP',
  122: 'EDQUOT',
};

function errnoError(operation: string, path: Buffer, errno: number): NodeJS.ErrnoException {
  const code = ERRNO[errno] ?? `errno ${errno}`;
  const error: NodeJS.ErrnoException = new Error(`${code}: ${operation} '${path.toString('utf8')}'`);
  error.code = code;
  error.errno = -errno;
  return error;
}

class PerlMetadataIo implements FileMetadataIo {
  readonly exact = true;
  private readonly waiting: { resolve: (answer: string) => void; reject: (error: Error) => void }[] = [];
  /** Request lines not yet written: written together once this turn of the event loop is over. */
  private pending: string[] = [];
  private failure: Error | undefined;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => this.waiting.shift()?.resolve(line));
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure);
    };
    child.on('error', fail);
    child.on('exit', (code, signal) => fail(new Error(`the file metadata helper exited (${signal ?? code})`)));
    child.stdin.on('error', fail);
  }

  request(line: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (this.pending.push(line) === 1) setImmediate(() => this.writePending());
    });
  }

  private writePending(): void {
    if (this.pending.length === 0) return;
    this.child.stdin.write(`${this.pending.join('\n')}\n`);
    this.pending = [];
  }

  private async call(op: 'T' | 'D' | 'S', what: string, path: Buffer, args: string[]): Promise<string> {
    const answer = await this.request([op, path.toString('hex'), ...args].join(' '));
    if (answer.startsWith('E ')) throw errnoError(what, path, Number(answer.slice(2)));
    return answer.slice(3);
  }

  async setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint): Promise<void> {
    await this.call('T', 'setting times of', path, [...timespec(atimeNs), ...timespec(mtimeNs)]);
  }

  async readXattrsIn(dir: Buffer, names: readonly Buffer[]): Promise<(Xattr[] | NodeJS.ErrnoException)[]> {
    const answer = await this.call(
      'D',
      'reading extended attributes in',
      dir,
      names.map((name) => name.toString('hex')),
    );
    const read: (Xattr[] | NodeJS.ErrnoException)[] = names.map(() => []);
    for (const item of answer.split(' ')) {
      if (!item) continue;
      const failed = item.indexOf('!');
      if (failed !== -1) {
        const i = Number(item.slice(0, failed));
        const path = Buffer.concat([dir, SLASH, names[i] as Buffer]);
        read[i] = errnoError('reading extended attributes of', path, Number(item.slice(failed + 1)));
        continue;
      }
      const [i, name, value] = item.split(/[:=]/) as [string, string, string];
      (read[Number(i)] as Xattr[]).push({
        name: Buffer.from(name, 'hex').toString('utf8'),
        value: Buffer.from(value, 'hex'),
      });
    }
    for (const xattrs of read) if (Array.isArray(xattrs)) xattrs.sort(byName);
    return read;
  }

  async setXattr(path: Buffer, xattr: Xattr): Promise<void> {
    await this.call('S', `setting ${xattr.name} on`, path, [
      Buffer.from(xattr.name).toString('hex'),
      xattr.value.toString('hex'),
    ]);
  }

  close(): void {
    this.writePending();
    this.child.stdin.end();
  }
}

const SLASH = Buffer.from('/');

function byName(a: Xattr, b: Xattr): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Seconds and nanoseconds (0..999999999) of a time in nanoseconds, as utimensat wants them. */
function timespec(ns: bigint): [string, string] {
  const seconds = ns >= 0n || ns % 1_000_000_000n === 0n ? ns / 1_000_000_000n : ns / 1_000_000_000n - 1n;
  return [seconds.toString(), (ns - seconds * 1_000_000_000n).toString()];
}

/**
 * Without the helper: times through Node, to the nearest double number of seconds: less than half a
 * microsecond off until 2106. The seconds go as an exact decimal string: Node replaces a negative number (a time
 * before 1970) with "now", but passes a numeric string through.
 */
class NodeMetadataIo implements FileMetadataIo {
  readonly exact = false;

  async setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, symlink: boolean): Promise<void> {
    await (symlink ? lutimes : utimes)(path, seconds(atimeNs), seconds(mtimeNs));
  }

  async readXattrsIn(_dir: Buffer, names: readonly Buffer[]): Promise<Xattr[][]> {
    return names.map(() => []);
  }

  async setXattr(path: Buffer, xattr: Xattr): Promise<void> {
    throw errnoError(`setting ${xattr.name} (no file metadata helper) on`, path, 95);
  }

  close(): void {}
}

function seconds(ns: bigint): string {
  const magnitude = ns < 0n ? -ns : ns;
  return `${ns < 0n ? '-' : ''}${magnitude / 1_000_000_000n}.${(magnitude % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** The exact helper where Perl and a known architecture are there, else the Node fallback (`exact` false). */
export async function openFileMetadataIo(perl = 'perl'): Promise<FileMetadataIo> {
  const syscalls = process.platform === 'linux' ? SYSCALLS[process.arch] : undefined;
  if (!syscalls) return new NodeMetadataIo();
  const child = spawn(perl, ['-e', HELPER, ...syscalls.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.resume();
  const io = new PerlMetadataIo(child);
  try {
    await io.request('P');
  } catch {
    return new NodeMetadataIo();
  }
  return io;
}
