/**
 * One overwrite policy for every command (checked by {@link checkOutputPath} before any
 * slow work): an output is never one of the run's inputs; an existing output is refused
 * unless `overwrite` is set; missing parent folders are created when the file is written.
 * Outputs are written by atomic-write.ts, which replaces a symlink at the output path by a
 * file rather than writing through it.
 */
import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsPath } from './byte-names';
import { usageError, msg, opt } from '../errors';
import { ioError } from './io-errors';
import { STDIO } from './stdio';

/** Create the folder an output goes into (and its parents); one-line errors. */
export async function ensureParentDir(target: string): Promise<void> {
  const dir = dirname(resolve(target));
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw usageError(`Cannot create folder ${dir}: a file of that name is in the way`);
    // mkdir -p reports ENOENT where the real cause is a read-only or unwritable ancestor: find it.
    throw ioError(code === 'ENOENT' ? await firstMkdirFailure(dir).catch(() => err) : err, dir, 'create folder');
  }
}

/** The error of creating the first missing folder on the way to `dir` (its real cause). */
async function firstMkdirFailure(dir: string): Promise<unknown> {
  let missing = dir;
  while (!(await fs.stat(dirname(missing)).catch(() => null))) {
    if (dirname(missing) === missing) break;
    missing = dirname(missing);
  }
  try {
    await fs.mkdir(missing);
    await fs.rmdir(missing);
  } catch (err) {
    return err;
  }
  return new Error('unknown');
}

export interface OutputCheckOptions {
  /** Replace an existing output (the CLI's --overwrite). */
  overwrite?: boolean;
}

/** Same file: same resolved path, or the same inode (hard links, symlinks, `./a` vs `a`). */
async function sameFile(a: string, b: string): Promise<boolean> {
  if (resolve(a) === resolve(b)) return true;
  const [sa, sb] = await Promise.all([fs.stat(fsPath(a)).catch(() => null), fs.stat(fsPath(b)).catch(() => null)]);
  return !!sa && !!sb && sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * Cheap checks on an output path, done before any slow work: it is not one of the inputs,
 * not a directory, does not exist yet (unless `overwrite`), and its nearest existing
 * ancestor is a folder (missing folders are created on write). `-` (stdout) passes.
 */
export async function checkOutputPath(
  target: string,
  inputs: readonly string[] = [],
  option = 'output',
  options: OutputCheckOptions = {},
): Promise<void> {
  if (target === STDIO) return;
  for (const input of inputs) {
    if (input !== STDIO && (await sameFile(input, target))) {
      throw usageError(msg`Output ${opt(option)} ${target} is also an input of this run; choose another file name`);
    }
  }
  const stat = await fs.lstat(target).catch(() => null);
  if (stat?.isDirectory()) throw usageError(msg`Output ${opt(option)} ${target} is a directory; give a file name`);
  if (stat && !options.overwrite) {
    const what = stat.isSymbolicLink() ? 'exists (a symlink)' : 'exists';
    throw usageError(msg`Output ${opt(option)} ${target} ${what}; add ${opt('overwrite', true)} to replace it`);
  }
  let dir = dirname(resolve(target));
  for (;;) {
    const s = await fs.stat(dir).catch(() => null);
    if (s) {
      if (!s.isDirectory()) throw usageError(msg`Output ${opt(option)} ${target}: ${dir} is a file, not a folder`);
      return;
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}
