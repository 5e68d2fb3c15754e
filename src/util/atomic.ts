/**
 * Output files appear whole or not at all: data is written to a temporary file in the
 * same directory, then renamed over the target. An {@link OutputSet} also removes the
 * files a multi-file command already wrote when a later one fails.
 */
import { promises as fs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inputError, usageError } from '../errors';

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw inputError(`Cannot write ${target}: ${(err as Error).message}`, err);
  }
}

/**
 * Cheap checks on an output path, done before any slow work: its directory exists, it is
 * not a directory itself, and it is not one of the inputs.
 */
export async function checkOutputPath(target: string, inputs: readonly string[] = [], option = '-o'): Promise<void> {
  const abs = resolve(target);
  for (const input of inputs) {
    if (resolve(input) === abs) throw usageError(`Output ${option} ${target} is also an input; choose another file name`);
  }
  const dir = dirname(abs);
  const dirStat = await fs.stat(dir).catch(() => null);
  if (!dirStat || !dirStat.isDirectory()) throw usageError(`Output directory ${dirname(target)} does not exist (for ${option} ${target})`);
  const stat = await fs.stat(abs).catch(() => null);
  if (stat?.isDirectory()) throw usageError(`Output ${option} ${target} is a directory; give a file name`);
}

/** Files written by one command; `rollback()` removes them if the command fails later. */
export class OutputSet {
  private readonly written: string[] = [];

  async write(target: string, data: string | Uint8Array): Promise<void> {
    await writeFileAtomic(target, data);
    this.written.push(target);
  }

  /** Record a file written atomically by someone else (e.g. the image writer). */
  add(target: string): void {
    this.written.push(target);
  }

  get files(): readonly string[] {
    return this.written;
  }

  async rollback(): Promise<void> {
    await Promise.all(this.written.map((f) => fs.rm(f, { force: true })));
    this.written.length = 0;
  }
}
