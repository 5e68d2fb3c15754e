/**
 * Files that appear whole or not at all, and stay so through a power cut: the data goes to
 * a temporary file in the target's folder (so the rename never crosses file systems), the
 * file is fsynced, renamed over the target, and the folder fsynced so the rename itself is
 * on disk before the caller reports success. The one temp + rename in the code base: small
 * files go through {@link writeFileAtomic}, streamed ones through AtomicStreamWriter
 * (atomic-stream.ts), both ending in {@link commitTempFile}.
 *
 * The rename replaces the path itself: a target that is a symlink is replaced by a file,
 * the link's target is never written through.
 */
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { ioError } from './io-errors';
import { ensureParentDir } from './output-path';
import { tempPathFor, trackTemp, untrackTemp } from './temp-files';

export { tempPathFor };

/** Codes of file systems that cannot fsync a folder: the rename is as durable as they allow. */
const NO_DIR_SYNC = ['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM', 'EACCES'];

/** fsync a folder, so that renames and removals in it are on disk. */
export async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(dir, 'r');
  } catch (err) {
    if (NO_DIR_SYNC.includes((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    await fh.sync();
  } catch (err) {
    if (!NO_DIR_SYNC.includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Finish a temporary file written through `fh`: fsync it, close it, rename it over
 * `target`, fsync the folder. Throws the raw error; the caller removes `tmp` on failure.
 */
export async function commitTempFile(fh: fs.FileHandle, tmp: string, target: string): Promise<void> {
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, target);
  await syncDir(dirname(target));
}

/** Write `data` to `target` atomically and durably; missing parent folders are created. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await ensureParentDir(target);
  const tmp = tempPathFor(target);
  trackTemp(tmp); // an interrupt removes it (temp-files.ts)
  try {
    const fh = await fs.open(tmp, 'wx');
    try {
      await fh.writeFile(data);
    } catch (err) {
      await fh.close();
      throw err;
    }
    await commitTempFile(fh, tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(err, target, 'write');
  } finally {
    untrackTemp(tmp);
  }
}

/** Remove `path` (if there) durably: before an output changes, its done marker must be gone for good. */
export async function removeDurable(path: string): Promise<boolean> {
  try {
    await fs.rm(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(err, path, 'remove');
  }
  await syncDir(dirname(path));
  return true;
}
