/**
 * File-system failures as one line a user can act on: the file, what was being done, and
 * the cause in words (no space left, read-only, permission denied), never a stack trace.
 * They are `input` errors (exit 2): the run's data or disk, not its flags.
 */
import { inputError, StyledVqError, firstLine } from '../errors';

const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for this file system (or ulimit -f)',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  EEXIST: 'it already exists',
  EIO: 'input/output error (a failing disk or network file system)',
  EMFILE: 'too many open files (raise ulimit -n)',
  ENFILE: 'too many open files on the system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EBUSY: 'resource busy',
  ETXTBSY: 'file busy',
  EXDEV: 'cannot rename across file systems',
};

/** The words for an errno code, or undefined when it is not a file-system error we know. */
export function describeErrno(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ? CAUSES[code] : undefined;
}

/** `Cannot <action> <path>: <cause>`; a StyledVqError passes through unchanged. */
export function ioError(
  err: unknown,
  path: string,
  action: 'read' | 'write' | 'create folder' | 'remove' | 'rename' | 'open' = 'write',
): StyledVqError {
  if (err instanceof StyledVqError) return err;
  const e = err as NodeJS.ErrnoException;
  const cause = describeErrno(e) ?? (e?.code ? `${e.code}` : firstLine(e));
  return inputError(`Cannot ${action} ${path}: ${cause}`, err);
}

/** Node's own errno errors carry `syscall` and usually `path`; used by bin/ as a last resort. */
export function isErrnoError(err: unknown): err is NodeJS.ErrnoException {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  );
}
