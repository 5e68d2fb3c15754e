/**
 * Quoted glob patterns for `batch` ("photos/**\/*.jpg"), so a folder of a million files
 * need not pass through the shell's argument list. Matching is picomatch's (bash rules:
 * `*`, `?`, `**`, classes, `{a,b}` alternatives including nested ones and ones holding
 * "/", `\*` escapes; dot files only when named); the walk itself stays ours (dir-walk.ts),
 * so the order is the same on every machine: sorted by code point, depth first.
 */
import picomatch from 'picomatch';
import { basename, dirname } from 'node:path';

const OPTIONS: picomatch.PicomatchOptions = { dot: false, posix: true };

/** A pattern (not an existing path): glob characters, or escapes of them. */
export const hasGlobMagic = (pattern: string): boolean =>
  picomatch.scan(pattern).isGlob || /\\[*?[\]{}()!]/.test(pattern);

export interface GlobPlan {
  /** The directory the walk starts from: the pattern's leading segments without magic. */
  base: string;
  /** Matches a path relative to `base` ("a/b.jpg"). */
  match: RegExp;
  /** Matches directories (relative to `base`) that can hold a match, to prune the walk. */
  enter: (relative: string) => boolean;
}

const escapeRe = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

/** Split a pattern into its static base directory and the matcher for the rest. */
export function planGlob(pattern: string): GlobPlan {
  const scan = picomatch.scan(pattern);
  if (!scan.isGlob) {
    // Only escaped magic ("photos/\*.jpg"): one literal file.
    const literal = pattern.replace(/\\(.)/g, '$1');
    return { base: dirname(literal), match: new RegExp(`^${escapeRe(basename(literal))}$`), enter: () => false };
  }
  let base = scan.base;
  if (base === '' && pattern.startsWith('/')) base = '/';
  if (base === '') base = '.';
  const glob = scan.glob;
  const match = picomatch.makeRe(glob, OPTIONS);
  // Without "**" (and without "/" inside braces) a match is exactly as deep as the pattern:
  // enter only directories that match its leading segments.
  const unbounded = glob.includes('**') || /\{[^}]*\/[^}]*\}/.test(glob);
  const segments = glob.split('/');
  const prefixes = unbounded
    ? []
    : segments.slice(0, -1).map((_, i) => picomatch.makeRe(segments.slice(0, i + 1).join('/'), OPTIONS));
  const enter = (relative: string) => {
    if (unbounded) return true;
    const depth = relative.split('/').length;
    return depth <= prefixes.length && prefixes[depth - 1].test(relative);
  };
  return { base, match, enter };
}
