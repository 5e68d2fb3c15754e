/**
 * The files one command wrote, so that a failure later in the command removes them again
 * (a multi-file command leaves all of its outputs or none).
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from './atomic-write';

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
