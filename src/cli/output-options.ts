/**
 * The output side every writing command shares: `--overwrite` (named once, the same
 * everywhere), `-` for stdin/stdout, and `--format` for images written to stdout.
 */
import type { Options } from 'yargs';
import { usageError } from '../errors';
import { type ImageFormat, imageFormatFor } from '../image';
import { writeFileAtomic } from '../io/atomic-write';
import { readStdin, STDIO, writeStdout } from '../io/stdio';

export interface OverwriteArgs {
  overwrite: boolean;
}

export const OVERWRITE_OPTION: { [K in keyof OverwriteArgs]-?: Options } = {
  overwrite: {
    type: 'boolean',
    default: false,
    describe: 'Replace existing output files (never an input of the same run)',
  },
};

export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

export interface ImageFormatArgs {
  format?: ImageFormat;
}

export const IMAGE_FORMAT_OPTION: { [K in keyof ImageFormatArgs]-?: Options } = {
  format: {
    type: 'string',
    choices: IMAGE_FORMATS,
    requiresArg: true,
    describe: 'Image format; needed with -o - (stdout), else from the -o extension',
  },
};

/** The format of an image output: --format, else the file extension; `-o -` needs --format. */
export function outputImageFormat(output: string, format?: ImageFormat): ImageFormat {
  if (output === STDIO) {
    if (!format) throw usageError('-o - writes the image to stdout: name its format with --format png, jpeg or webp');
    return format;
  }
  return format ?? imageFormatFor(output);
}

/** Write bytes to a file (atomically, parent folders created) or, for `-`, to stdout. */
export async function writeOutput(path: string, data: string | Uint8Array): Promise<void> {
  if (path === STDIO) {
    await writeStdout(data);
    return;
  }
  await writeFileAtomic(path, data);
}

/** `-` as an image input: its bytes, named "<stdin>" in records and messages. */
export async function imageInput(path: string): Promise<string | { source: string; data: Uint8Array }> {
  if (path !== STDIO) return path;
  return { source: '<stdin>', data: await readStdin() };
}

/** More than one `-` cannot work: stdin is read once. */
export function checkOneStdin(paths: readonly string[]): void {
  if (paths.filter((p) => p === STDIO).length > 1) throw usageError('- (stdin) can be named only once');
}
