/** `-` as a file name: stdin for inputs (read once, kept in memory), stdout for outputs. */
import { promises as fs, type Stats } from 'node:fs';
import { fsPath } from './byte-names';
import { inputError, usageError } from '../errors';
import { ioError } from './io-errors';

export const STDIO = '-';

let stdinBytes: Promise<Buffer> | undefined;

/** All of stdin, read once (an image or a token file piped in). */
export function readStdin(): Promise<Buffer> {
  stdinBytes ??= (async () => {
    if (process.stdin.isTTY)
      throw usageError(
        '- reads from stdin, but stdin is a terminal: pipe a file in (e.g. cat photo.jpg | styled-vq encode -)',
      );
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  })();
  return stdinBytes;
}

/** Write to stdout and wait until it is handed to the OS (large images, slow pipes). */
export function writeStdout(data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
}

/** A regular file to read, or a one-line error (missing, a folder, a FIFO or device). */
export async function checkReadableFile(path: string, what = 'file'): Promise<void> {
  let stat: Stats;
  try {
    stat = await fs.stat(fsPath(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw inputError(`Cannot read ${what} ${path}: no such file`, err);
    throw ioError(err, `${what} ${path}`, 'read');
  }
  if (stat.isDirectory()) throw inputError(`Cannot read ${what} ${path}: it is a folder`);
  if (!stat.isFile()) throw inputError(`Cannot read ${what} ${path}: not a regular file`);
}
