/**
 * Exclude patterns for volume backups, matched against paths relative to the backed-up root
 * (`docs/a.tmp`): `*` matches within one path segment, `**` across segments, `?` one character.
 * A pattern without `/` matches a name in any directory (like .gitignore).
 */
export function globMatcher(patterns: string[]): (relativePath: string) => boolean {
  const regexes = patterns.map(toRegExp);
  return (path) => regexes.some((r) => r.test(path));
}

function toRegExp(pattern: string): RegExp {
  const anchored = pattern.includes('/') ? pattern.replace(/^\//, '') : `**/${pattern}`;
  let source = '';
  for (let i = 0; i < anchored.length; i++) {
    const c = anchored[i] as string;
    if (c === '*' && anchored[i + 1] === '*') {
      const slash = anchored[i + 2] === '/';
      source += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
