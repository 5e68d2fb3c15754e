/**
 * Quoted glob patterns for `batch` ("photos/**\/*.jpg"), so a folder of a million files
 * need not pass through the shell's argument list. Supported: `*` and `?` (not across
 * "/", not matching a leading "."), `**` as a whole segment (any number of directories),
 * `[abc]` / `[a-z]` / `[!a]` classes and `{a,b}` alternatives (not nested).
 */

const MAGIC = /[*?[{]/;

export const hasGlobMagic = (pattern: string): boolean => MAGIC.test(pattern);

export interface GlobPlan {
  /** The directory the walk starts from: the pattern's leading segments without magic. */
  base: string;
  /** Matches a path relative to `base` ("a/b.jpg"). */
  match: RegExp;
  /** Matches directories (relative to `base`) that can hold a match, to prune the walk. */
  enter: (relative: string) => boolean;
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/** One path segment (no "/") -> a regular expression source. */
function segmentSource(seg: string): string {
  let out = seg.startsWith('*') || seg.startsWith('?') || seg.startsWith('[') ? '(?!\\.)' : '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^/' : ''}${body.replace(/\\/g, '\\\\').replace(/]/g, '\\]')}]`;
      i = end;
    } else if (c === '{') {
      const end = seg.indexOf('}', i);
      if (end < 0) {
        out += '\\{';
        continue;
      }
      const alternatives = seg.slice(i + 1, end).split(',');
      out += `(?:${alternatives.map((a) => segmentSource(a).replace(/^\(\?!\\\.\)/, '')).join('|')})`;
      i = end;
    } else out += escapeRe(c);
  }
  return out;
}

/** "a/**\/b/*.jpg" -> regex source over "/"-separated relative paths. */
function patternSource(segments: string[]): string {
  let out = '';
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '**') out += last ? '(?:(?!\\.)[^/]*(?:/(?!\\.)[^/]*)*)?' : '(?:(?!\\.)[^/]+/)*';
    else out += segmentSource(seg) + (last ? '' : '/');
  });
  return out;
}

/** Split a pattern into its static base directory and the matcher for the rest. */
export function planGlob(pattern: string): GlobPlan {
  const normalised = pattern.replace(/\\/g, '/');
  const segments = normalised.split('/');
  let k = 0;
  while (k < segments.length - 1 && !MAGIC.test(segments[k])) k++;
  const baseSegments = segments.slice(0, k);
  const rest = segments.slice(k).filter((s, i, all) => s !== '' || i === all.length - 1);
  let base = baseSegments.join('/');
  if (base === '' && normalised.startsWith('/')) base = '/';
  if (base === '') base = '.';
  const match = new RegExp(`^${patternSource(rest)}$`);
  const deep = rest.includes('**');
  // Without "**" a match is exactly rest.length segments deep: enter only matching prefixes.
  const prefixes = rest.slice(0, -1).map((_, i) => new RegExp(`^${patternSource(rest.slice(0, i + 1))}$`));
  const enter = (relative: string) => {
    if (deep) return true;
    const depth = relative.split('/').length;
    return depth <= prefixes.length && prefixes[depth - 1].test(relative);
  };
  return { base, match, enter };
}
