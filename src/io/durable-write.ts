/**
 * A small file that must survive a power cut whole or not at all (a done marker): written
 * to a temporary file, fsynced, renamed over the target, and the folder fsynced so the
 * rename itself is on disk before the caller reports success.
 */
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { ioError } from '../util/io-errors';
import { tempPathFor } from '../util/atomic';

export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on a folder (EINVAL): the rename is as durable as they allow.
    if (!['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

export async function writeFileDurable(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    const fh = await fs.open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, target);
    await syncDir(dirname(target));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw ioError(err, target, 'write');
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
