/**
 * A lazy, deterministic directory walk: one directory's names are read at a time, sorted
 * by code point (the same order on every machine and locale), and yielded depth-first.
 * Hidden entries (".name") are skipped. Symbolic links are followed; a link back to a
 * directory being walked is not entered twice. Names are read as bytes: one that is not
 * valid UTF-8 is listed in its escaped form (io/byte-names.ts), never dropped.
 */
import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import { decodeName, fsPath } from '../io/byte-names';

/** One listed path, or a directory that could not be read (reported, never dropped). */
export type WalkEntry = { path: string; error?: undefined } | { path: string; error: string };

export interface WalkOptions {
  /** Enter subdirectories (all depths). Default false: files of `dir` only. */
  recursive: boolean;
  /** Which files to yield, by path relative to the walk root ("a/b.jpg"). Default: all. */
  accept?: (relative: string) => boolean;
  /** Called for every file `accept` turned down (counting "ignored" files). */
  onRejected?: (relative: string) => void;
  /** Enter a subdirectory only if this says so (prunes a glob walk). Default: yes. */
  enter?: (relative: string) => boolean;
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await fs.stat(fsPath(path));
  } catch {
    return null; // a dangling link: nothing to list
  }
}

export async function* walkSorted(root: string, options: WalkOptions): AsyncGenerator<WalkEntry> {
  const ancestors = new Set<string>();
  const rootStat = await fs.stat(fsPath(root));
  yield* walkDir(root, '', rootStat, ancestors, options);
}

async function* walkDir(
  dir: string,
  relative: string,
  stat: Stats,
  ancestors: Set<string>,
  options: WalkOptions,
): AsyncGenerator<WalkEntry> {
  const key = `${stat.dev}:${stat.ino}`;
  if (ancestors.has(key)) return; // a symlink cycle
  let names: string[];
  try {
    // As bytes: Node's own decoding turns every byte that is not UTF-8 into U+FFFD, and the file is lost (issue 15.9).
    names = (await fs.readdir(fsPath(dir), { encoding: 'buffer' }))
      .map(decodeName)
      .filter((n) => !n.startsWith('.'))
      .sort(byCodePoint);
  } catch (err) {
    yield {
      path: dir,
      error: `cannot list directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
    return;
  }
  ancestors.add(key);
  try {
    for (const name of names) {
      const path = join(dir, name);
      const rel = relative ? `${relative}/${name}` : name;
      const st = await statOrNull(path);
      if (!st) continue;
      if (st.isDirectory()) {
        if (options.recursive && (options.enter?.(rel) ?? true)) yield* walkDir(path, rel, st, ancestors, options);
      } else if (st.isFile()) {
        if (options.accept?.(rel) ?? true) yield { path };
        else options.onRejected?.(rel);
      }
    }
  } finally {
    ancestors.delete(key);
  }
}

/**
 * Whether a folder has image files below its first level (for the "No images found"
 * hint); looks at no more than `limit` entries so a huge tree costs little.
 */
export async function hasImagesInSubfolders(dir: string, limit = 10_000): Promise<boolean> {
  const st = await statOrNull(dir);
  if (!st?.isDirectory()) return false;
  const { isImageName } = await import('./input-list');
  let seen = 0;
  for await (const e of walkSorted(dir, { recursive: true })) {
    if (++seen > limit) return false;
    if (
      !e.error &&
      isImageName(e.path) &&
      e.path
        .slice(dir.length)
        .replace(/^[\\/]+/, '')
        .includes('/')
    )
      return true;
  }
  return false;
}
