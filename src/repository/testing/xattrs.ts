// Extended attributes set and read one name at a time by Python's os module: independent of the file metadata
// helper under test, and the per-name reading the helper's batched requests must match.
import { execFileSync } from 'node:child_process';

/** Sets attributes (path, name, value: any bytes), symlinks themselves, in one Python run. */
export function setXattrs(xattrs: [path: Buffer, name: Buffer, value: Buffer][]): void {
  const script = `
import os, sys
for path, name, value in zip(*[iter(sys.argv[1:])] * 3):
    os.setxattr(bytes.fromhex(path), bytes.fromhex(name), bytes.fromhex(value), follow_symlinks=False)`;
  execFileSync('python3', ['-c', script, ...xattrs.flat().map((b) => b.toString('hex'))]);
}

/**
 * The attributes of each name of a directory as one llistxattr and lgetxattr per name read them (attribute name
 * to hex value, sorted by name), or the errno name (`ENOENT`...) of the name's failure.
 */
export function perNameXattrs(directory: Buffer, names: Buffer[]): (Record<string, string> | string)[] {
  const script = `
import errno, json, os, sys
out = []
for name in sys.argv[2:]:
    path = bytes.fromhex(sys.argv[1]) + b'/' + bytes.fromhex(name)
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
        out.append({a: os.getxattr(path, a, follow_symlinks=False).hex() for a in names})
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(json.dumps(out))`;
  const args = ['-c', script, directory.toString('hex'), ...names.map((n) => n.toString('hex'))];
  return JSON.parse(execFileSync('python3', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }));
}
